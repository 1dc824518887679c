package ai.kiln.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;

/**
 * The Hugging Face cache, laid out as huggingface_hub lays it out, so that either can use what the
 * other downloaded:
 *
 * <pre>
 * ROOT/models--ORG--NAME/refs/REVISION           the commit the revision pointed to
 * ROOT/models--ORG--NAME/blobs/ETAG              a file's bytes, named by its ETag
 * ROOT/models--ORG--NAME/snapshots/COMMIT/FILE   a symlink to ../../blobs/ETAG (a copy where links fail)
 * </pre>
 *
 * <p>What is written goes in that order: blobs (each complete and checked before its atomic move
 * out of {@code ETAG.incomplete}), then the snapshot entries, then the ref, so that a ref names
 * only a whole model.
 */
public final class HubCache {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path root;

    public HubCache(Path root) {
        this.root = root;
    }

    public Path root() {
        return root;
    }

    public Path repoDir(HubRepo repo) {
        return root.resolve(repo.cacheFolderName());
    }

    Path refFile(HubRepo repo) {
        return repoDir(repo).resolve("refs").resolve(repo.revision());
    }

    Path blobsDir(HubRepo repo) {
        return repoDir(repo).resolve("blobs");
    }

    public Path snapshotDir(HubRepo repo, String commit) {
        return repoDir(repo).resolve("snapshots").resolve(commit);
    }

    /** The commit the cached ref of the revision names (the revision itself for a commit hash), if any. */
    Optional<String> cachedCommit(HubRepo repo) {
        if (repo.revisionIsCommit()) {
            return Optional.of(repo.revision());
        }
        Path ref = refFile(repo);
        try {
            return Files.isRegularFile(ref) ? Optional.of(Files.readString(ref, StandardCharsets.UTF_8).strip())
                    .filter(commit -> !commit.isEmpty()) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** The cached snapshot of the revision, where it holds a whole model (see {@link #missingForModel}). */
    public Optional<Path> completeSnapshot(HubRepo repo) {
        return cachedCommit(repo).map(commit -> snapshotDir(repo, commit))
                .filter(dir -> missingForModel(dir).isEmpty());
    }

    /**
     * What a snapshot lacks to be loaded: config.json, and the weights (every shard the
     * safetensors index names, else at least one .safetensors file). Empty for a whole model.
     * NOTE: Python tools download single files (a config alone, say) and still write the ref, so
     * a ref alone does not mean the model is there.
     */
    static List<String> missingForModel(Path snapshot) {
        List<String> missing = new ArrayList<>();
        if (!Files.isDirectory(snapshot)) {
            missing.add("the snapshot " + snapshot);
            return missing;
        }
        if (!Files.isRegularFile(snapshot.resolve("config.json"))) {
            missing.add("config.json");
        }
        Path index = snapshot.resolve("model.safetensors.index.json");
        if (Files.isRegularFile(index)) {
            try {
                JsonNode weightMap = JSON.readTree(index.toFile()).path("weight_map");
                for (Iterator<JsonNode> it = weightMap.elements(); it.hasNext(); ) {
                    String shard = it.next().asText();
                    if (!Files.isRegularFile(snapshot.resolve(shard)) && !missing.contains(shard)) {
                        missing.add(shard);
                    }
                }
            } catch (IOException e) {
                missing.add("a readable model.safetensors.index.json");
            }
        } else if (!hasSafetensors(snapshot)) {
            missing.add("*.safetensors weights");
        }
        return missing;
    }

    private static boolean hasSafetensors(Path dir) {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path file : files) {
                if (Files.isRegularFile(file)) {
                    return true;
                }
            }
            return false;
        } catch (IOException e) {
            return false;
        }
    }

    /** Where a blob's bytes are, whole. */
    Path blob(HubRepo repo, String etag) {
        return blobsDir(repo).resolve(etag);
    }

    /** Where a blob's bytes are received until they are whole and checked. */
    Path incompleteBlob(HubRepo repo, String etag) {
        return blobsDir(repo).resolve(etag + ".incomplete");
    }

    /** Moves a received and checked blob into place in one step. */
    void completeBlob(HubRepo repo, String etag) throws IOException {
        moveAtomically(incompleteBlob(repo, etag), blob(repo, etag));
    }

    /**
     * Puts {@code file} into the snapshot as a relative symlink to its blob, as huggingface_hub
     * does; where the file system refuses links, a copy (made aside and moved in whole).
     */
    void linkIntoSnapshot(HubRepo repo, String commit, String file, String etag) throws IOException {
        linkOrCopy(snapshotDir(repo, commit).resolve(file), blob(repo, etag));
    }

    /** Makes {@code entry} a relative symlink to {@code blob}, else a copy of it made aside and moved in whole. */
    static void linkOrCopy(Path entry, Path blob) throws IOException {
        Files.createDirectories(entry.getParent());
        Path target = entry.getParent().relativize(blob);
        Files.deleteIfExists(entry);
        try {
            Files.createSymbolicLink(entry, target);
        } catch (UnsupportedOperationException | IOException e) {
            Path aside = entry.resolveSibling(entry.getFileName() + ".incomplete");
            Files.copy(blob, aside, StandardCopyOption.REPLACE_EXISTING);
            moveAtomically(aside, entry);
        }
    }

    /** Points the revision's ref at {@code commit}; the last write of a download. */
    void writeRef(HubRepo repo, String commit) throws IOException {
        if (repo.revisionIsCommit()) {
            return;
        }
        Path ref = refFile(repo);
        Files.createDirectories(ref.getParent());
        Path aside = ref.resolveSibling(ref.getFileName() + ".incomplete");
        Files.writeString(aside, commit, StandardCharsets.UTF_8);
        moveAtomically(aside, ref);
    }

    static void moveAtomically(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
