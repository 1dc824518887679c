package ai.kiln.s3;

import ai.kiln.hub.HubException;
import java.util.Locale;

/**
 * A model directory in an S3 bucket, {@code s3://BUCKET/PREFIX}: its files are the objects under
 * {@code PREFIX/} (the whole bucket where the prefix is empty).
 *
 * @param bucket the bucket's name
 * @param prefix the directory's key prefix, without slashes at either end ("" for the bucket's root)
 */
public record S3Location(String bucket, String prefix) {

    static final String SCHEME = "s3://";

    /** Whether {@code model} is an s3:// URL. */
    public static boolean isS3(String model) {
        return model != null && model.toLowerCase(Locale.ROOT).startsWith(SCHEME);
    }

    /**
     * {@code s3://BUCKET[/PREFIX][/]}.
     *
     * @throws HubException naming what is wrong with it
     */
    public static S3Location parse(String url) {
        if (!isS3(url)) {
            throw new HubException(url + " is not an s3://BUCKET/PREFIX URL");
        }
        String rest = url.substring(SCHEME.length());
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String prefix = slash < 0 ? "" : rest.substring(slash + 1).replaceAll("^/+|/+$", "");
        // Bucket names: 3-63 lower-case letters, digits, dots and hyphens (S3's rule).
        if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
            throw new HubException("model " + url + ": \"" + bucket + "\" is not an S3 bucket name (3 to 63 lower-case"
                    + " letters, digits, dots and hyphens); the form is s3://BUCKET/PREFIX");
        }
        if (prefix.contains("?") || prefix.contains("#") || prefix.contains("//")) {
            throw new HubException("model " + url + ": the prefix \"" + prefix + "\" may hold no ?, # or //");
        }
        return new S3Location(bucket, prefix);
    }

    /** The key of {@code file} (a path in the directory). */
    public String key(String file) {
        return prefix.isEmpty() ? file : prefix + "/" + file;
    }

    /** The name a model from here is served under: the prefix's last segment, else the bucket. */
    public String modelName() {
        return prefix.isEmpty() ? bucket : prefix.substring(prefix.lastIndexOf('/') + 1);
    }

    @Override
    public String toString() {
        return SCHEME + bucket + (prefix.isEmpty() ? "" : "/" + prefix);
    }
}
