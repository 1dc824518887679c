package ai.kiln.s3;

import java.net.URI;
import java.util.Map;
import java.util.Optional;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The S3 client Kiln's s3:// models use: credentials and region from the SDK's default chains
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the aws.accessKeyId / aws.secretAccessKey
 * properties, ~/.aws, instance roles; AWS_REGION or aws.region, else us-east-1 with each bucket's
 * region found by the client), and for
 * S3-compatible stores (MinIO, S3Proxy, Ceph) an endpoint from AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL (or the aws.endpointUrlS3 / aws.endpointUrl properties), addressed path-style
 * (http://HOST/BUCKET/KEY), which they all take.
 */
final class S3Clients {

    private S3Clients() {
    }

    /** The endpoint override the environment or the system properties name, if any. */
    static Optional<URI> endpoint(Map<String, String> env) {
        for (String property : new String[] {"aws.endpointUrlS3", "aws.endpointUrl"}) {
            String value = System.getProperty(property);
            if (value != null && !value.isBlank()) {
                return Optional.of(URI.create(value.strip()));
            }
        }
        for (String variable : new String[] {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
            String value = env.get(variable);
            if (value != null && !value.isBlank()) {
                return Optional.of(URI.create(value.strip()));
            }
        }
        return Optional.empty();
    }

    /** Where requests go, for messages: the endpoint override, else AWS's S3. */
    static String describe(Optional<URI> endpoint) {
        return endpoint.map(URI::toString).orElse("AWS S3");
    }

    static S3Client create(Optional<URI> endpoint) {
        Region region;
        boolean regionGiven = true;
        try {
            region = new DefaultAwsRegionProviderChain().getRegion();
        } catch (SdkClientException e) {
            region = Region.US_EAST_1; // an S3-compatible store ignores it
            regionGiven = false;
        }
        var builder = S3Client.builder().region(region).credentialsProvider(DefaultCredentialsProvider.builder().build())
                .httpClient(UrlConnectionHttpClient.create());
        if (!regionGiven && endpoint.isEmpty()) {
            // On AWS without a configured region: the client finds each bucket's own region (it does
            // not follow S3's region redirects otherwise).
            builder.crossRegionAccessEnabled(true);
        }
        // NOTE: S3-compatible stores lag behind AWS's newer integrity checksums (a trailer on every
        // upload); the SDK sends and checks them only where the operation requires them. Kiln checks
        // every download against the manifest's sha256 itself.
        endpoint.ifPresent(uri -> builder.endpointOverride(uri).forcePathStyle(true)
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED));
        return builder.build();
    }
}
