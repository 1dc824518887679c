package ai.kiln.s3;

import ai.kiln.hub.HubException;
import ai.kiln.hub.LocatedModel;
import ai.kiln.hub.ManifestSnapshots;
import ai.kiln.hub.ModelManifest;
import ai.kiln.hub.RemoteModelStore;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.util.Optional;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * {@code --model s3://BUCKET/PREFIX}: a model directory in an S3 bucket (AWS, or any S3-compatible
 * store through an endpoint override, {@link S3Clients}) with its {@code kiln-manifest.json}, as
 * {@code kiln publish} writes it, downloaded into Kiln's cache like a file server's ({@link
 * ManifestSnapshots}: resumed with ranged GETs, checked against the manifest's sha256, moved into
 * place whole; the cache label is {@code s3.BUCKET}).
 */
public final class S3ModelStore implements RemoteModelStore {

    @Override
    public boolean accepts(String model) {
        return S3Location.isS3(model);
    }

    @Override
    public LocatedModel locate(String model, ManifestSnapshots snapshots) {
        S3Location location = S3Location.parse(model);
        Optional<URI> endpoint = S3Clients.endpoint(System.getenv());
        // The endpoint is part of the cache key: the same bucket name on two stores is two models.
        String url = location + endpoint.map(uri -> " at " + uri).orElse("");
        // NOTE: the client is made on the first request, so that HF_HUB_OFFLINE (which makes none)
        // does not wait on the SDK's region and credential lookups.
        Lazy client = new Lazy(endpoint);
        try (client) {
            return snapshots.locate(url, snapshots.modelDir("s3." + location.bucket(), url), location.modelName(),
                    new Files() {
                        @Override
                        public byte[] manifest() {
                            String key = location.key(ModelManifest.FILE_NAME);
                            try {
                                return client.get().getObjectAsBytes(b -> b.bucket(location.bucket()).key(key))
                                        .asByteArray();
                            } catch (S3Exception e) {
                                if (e.statusCode() == 404 && "NoSuchKey".equals(errorCode(e))) {
                                    throw new HubException(location + ": there is no " + ModelManifest.FILE_NAME
                                            + " at s3://" + location.bucket() + "/" + key + "; publish the model"
                                            + " directory with `kiln publish DIR " + location + "`", e);
                                }
                                throw failure(location, endpoint, ModelManifest.FILE_NAME, e);
                            } catch (SdkException e) {
                                throw failure(location, endpoint, ModelManifest.FILE_NAME, e);
                            }
                        }

                        @Override
                        public Body open(String file, long from, long to) {
                            GetObjectRequest.Builder request = GetObjectRequest.builder().bucket(location.bucket())
                                    .key(location.key(file));
                            if (from > 0 || to >= 0) {
                                request.range("bytes=" + from + "-" + (to >= 0 ? to : ""));
                            }
                            try {
                                ResponseInputStream<GetObjectResponse> body = client.get().getObject(request.build());
                                return new Body(new SdkFailuresAsIo(body), body.response().contentRange() != null);
                            } catch (S3Exception e) {
                                if (e.statusCode() == 416) {
                                    throw new RangeNotSatisfiable(location + ": " + file + ": the store's copy is"
                                            + " shorter than what was received before (" + from + " bytes); the"
                                            + " partial download was deleted, run again");
                                }
                                throw failure(location, endpoint, file, e);
                            } catch (SdkException e) {
                                throw failure(location, endpoint, file, e);
                            }
                        }
                    });
        }
    }

    /**
     * The SDK's unchecked failures while a body is read (a connection reset) as the IOException a
     * broken-off transfer is reported by (what arrived is kept for the next run).
     */
    private static final class SdkFailuresAsIo extends FilterInputStream {
        SdkFailuresAsIo(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            try {
                return super.read();
            } catch (SdkException e) {
                throw new IOException(e.getMessage(), e);
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            try {
                return super.read(b, off, len);
            } catch (SdkException e) {
                throw new IOException(e.getMessage(), e);
            }
        }
    }

    /** An S3 client made when first asked for, closed with this. */
    private static final class Lazy implements AutoCloseable {
        private final Optional<URI> endpoint;
        private S3Client client;

        Lazy(Optional<URI> endpoint) {
            this.endpoint = endpoint;
        }

        synchronized S3Client get() {
            if (client == null) {
                client = S3Clients.create(endpoint);
            }
            return client;
        }

        @Override
        public synchronized void close() {
            if (client != null) {
                client.close();
            }
        }
    }

    static String errorCode(S3Exception e) {
        return e.awsErrorDetails() == null ? null : e.awsErrorDetails().errorCode();
    }

    /** What a failed request for {@code file} means, saying what to do. */
    static HubException failure(S3Location location, Optional<URI> endpoint, String file, SdkException e) {
        String where = location + ": " + file + " (" + S3Clients.describe(endpoint) + ")";
        if (e instanceof S3Exception s3) {
            String code = errorCode(s3);
            int status = s3.statusCode();
            if ("NoSuchBucket".equals(code)) {
                return new HubException(where + ": the bucket " + location.bucket() + " does not exist there"
                        + (endpoint.isEmpty() ? "; for an S3-compatible store set AWS_ENDPOINT_URL" : ""), e);
            }
            if (status == 404) {
                return new HubException(where + ": not found: the manifest lists a file the bucket lacks;"
                        + " publish the directory again", e);
            }
            if (status == 401 || status == 403) {
                return new HubException(where + ": access denied (" + code + "): the credentials from the SDK's"
                        + " default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials)"
                        + " may not read it", e);
            }
            return new HubException(where + ": HTTP " + status + " " + code + ": " + s3.getMessage(), e);
        }
        if (e instanceof SdkClientException && e.getMessage() != null && e.getMessage().contains("credentials")) {
            return new HubException(where + ": no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or"
                    + " AWS_PROFILE); " + e.getMessage(), e);
        }
        return new HubException(where + ": no answer (" + e.getMessage() + "); with HF_HUB_OFFLINE=1 the copy"
                + " downloaded before is used", e);
    }
}
