package ai.kiln.s3;

import ai.kiln.hub.HubException;
import ai.kiln.hub.ModelManifest;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * {@code kiln publish DIR s3://BUCKET/PREFIX}: stores a model directory where {@code --model
 * s3://BUCKET/PREFIX} reads it. Its manifest is computed (each model file's size and sha256), the
 * files are uploaded, each with its sha256 as metadata so that a second publish skips what the
 * bucket already holds, and the manifest goes last: a reader never finds a manifest whose files
 * are not all there (one that finds an older manifest while files change gets a checksum error,
 * not wrong weights).
 */
public final class S3Publisher {

    /** The object metadata that holds an uploaded file's sha256. */
    static final String SHA256_METADATA = "kiln-sha256";

    private final PrintWriter out;
    /** Files larger go up in parts (1 GiB; -Dkiln.s3.multipartMiB for tests), parts of this size (256 MiB; -Dkiln.s3.partMiB). */
    private final long multipartThreshold = Long.getLong("kiln.s3.multipartMiB", 1024) << 20;
    private final long partBytes = Math.max(5, Long.getLong("kiln.s3.partMiB", 256)) << 20;

    /** @param out where each upload is reported (null: nowhere) */
    public S3Publisher(PrintWriter out) {
        this.out = out;
    }

    /**
     * Publishes {@code dir} to {@code url}; returns the manifest it stored.
     *
     * @throws HubException naming the file and what failed
     */
    public ModelManifest publish(Path dir, String url) throws IOException {
        S3Location location = S3Location.parse(url);
        ModelManifest manifest = ModelManifest.of(dir);
        Optional<URI> endpoint = S3Clients.endpoint(System.getenv());
        try (S3Client s3 = S3Clients.create(endpoint)) {
            long uploaded = 0;
            for (ModelManifest.Entry file : manifest.files()) {
                String key = location.key(file.path());
                if (holds(s3, location, endpoint, key, file)) {
                    report("unchanged %s%n", key);
                    continue;
                }
                try {
                    if (file.size() > multipartThreshold) {
                        uploadInParts(s3, location, key, dir.resolve(file.path()), file);
                    } else {
                        s3.putObject(b -> b.bucket(location.bucket()).key(key).contentLength(file.size())
                                .metadata(Map.of(SHA256_METADATA, file.sha256())),
                                RequestBody.fromFile(dir.resolve(file.path())));
                    }
                } catch (SdkException e) {
                    throw S3ModelStore.failure(location, endpoint, file.path(), e);
                }
                uploaded += file.size();
                report("uploaded %s (%d bytes)%n", key, file.size());
            }
            String manifestKey = location.key(ModelManifest.FILE_NAME);
            try {
                s3.putObject(b -> b.bucket(location.bucket()).key(manifestKey).contentType("application/json"),
                        RequestBody.fromBytes(manifest.toJson()));
            } catch (SdkException e) {
                throw S3ModelStore.failure(location, endpoint, ModelManifest.FILE_NAME, e);
            }
            report("published %s: %d files, %d bytes uploaded%n", location, manifest.files().size(), uploaded);
        }
        return manifest;
    }

    /**
     * A file in parts of {@link #partBytes} (S3 takes at most 5 GiB in one PUT, and 10,000 parts):
     * aborted on any failure, so that no half-uploaded object is left to be billed or found.
     */
    private void uploadInParts(S3Client s3, S3Location location, String key, Path path, ModelManifest.Entry file)
            throws IOException {
        String uploadId = s3.createMultipartUpload(b -> b.bucket(location.bucket()).key(key)
                .metadata(Map.of(SHA256_METADATA, file.sha256()))).uploadId();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            List<CompletedPart> parts = new ArrayList<>();
            long part = Math.max(partBytes, (file.size() + 9_999) / 10_000);
            for (long at = 0; at < file.size(); at += part) {
                long length = Math.min(part, file.size() - at);
                int number = parts.size() + 1;
                InputStream bytes = Channels.newInputStream(channel.position(at));
                String etag = s3.uploadPart(b -> b.bucket(location.bucket()).key(key).uploadId(uploadId)
                        .partNumber(number).contentLength(length), RequestBody.fromInputStream(bytes, length)).eTag();
                parts.add(CompletedPart.builder().partNumber(number).eTag(etag).build());
                report("  part %d of %s (%d bytes)%n", number, key, length);
            }
            s3.completeMultipartUpload(b -> b.bucket(location.bucket()).key(key).uploadId(uploadId)
                    .multipartUpload(m -> m.parts(parts)));
        } catch (IOException | RuntimeException e) {
            try {
                s3.abortMultipartUpload(b -> b.bucket(location.bucket()).key(key).uploadId(uploadId));
            } catch (SdkException abort) {
                e.addSuppressed(abort);
            }
            throw e;
        }
    }

    /** Whether the bucket holds {@code key} with the file's size and sha256 already. */
    private static boolean holds(S3Client s3, S3Location location, Optional<URI> endpoint, String key,
            ModelManifest.Entry file) {
        try {
            HeadObjectResponse head = s3.headObject(b -> b.bucket(location.bucket()).key(key));
            return head.contentLength() == file.size() && file.sha256().equals(head.metadata().get(SHA256_METADATA));
        } catch (S3Exception e) {
            if (e.statusCode() == 404 && !"NoSuchBucket".equals(S3ModelStore.errorCode(e))) {
                return false;
            }
            throw S3ModelStore.failure(location, endpoint, file.path(), e);
        } catch (SdkException e) {
            throw S3ModelStore.failure(location, endpoint, file.path(), e);
        }
    }

    private void report(String format, Object... args) {
        if (out != null) {
            out.printf(format, args);
            out.flush();
        }
    }
}
