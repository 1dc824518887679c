package ai.kiln.hub;

import java.util.regex.Pattern;

/**
 * A model repository on the Hub at one revision: {@code ORG/NAME} and a branch, tag or commit.
 *
 * @param id {@code ORG/NAME}
 * @param revision a branch, tag or commit hash ({@code main} unless given)
 */
public record HubRepo(String id, String revision) {

    public static final String DEFAULT_REVISION = "main";

    // NOTE: the Hub's own rule for names, which also keeps an id from climbing out of the cache
    // directory: letters, digits, '-', '_', '.', no "--" or "..", not starting or ending with '-'/'.'.
    private static final Pattern PART = Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    public HubRepo {
        if (!isRepoId(id)) {
            throw new IllegalArgumentException("'" + id + "' is not a Hugging Face Hub model id (ORG/NAME)");
        }
        if (revision == null || revision.isEmpty() || revision.startsWith("/") || revision.endsWith("/")
                || revision.contains("..") || revision.contains("\\")) {
            throw new IllegalArgumentException("'" + revision + "' is not a revision (a branch, tag or commit)");
        }
    }

    /** Whether {@code text} has the shape of a Hub model id, {@code ORG/NAME}. */
    public static boolean isRepoId(String text) {
        if (text == null) {
            return false;
        }
        int slash = text.indexOf('/');
        if (slash < 0 || slash != text.lastIndexOf('/')) {
            return false;
        }
        String org = text.substring(0, slash);
        String name = text.substring(slash + 1);
        return PART.matcher(org).matches() && PART.matcher(name).matches() && !text.contains("--")
                && !text.contains("..");
    }

    /** Whether the revision is a full commit hash, which needs no ref to be found in the cache. */
    public boolean revisionIsCommit() {
        return COMMIT.matcher(revision).matches();
    }

    /** The repository's folder in the cache, as huggingface_hub names it. */
    String cacheFolderName() {
        return "models--" + id.replace("/", "--");
    }

    @Override
    public String toString() {
        return id + "@" + revision;
    }
}
