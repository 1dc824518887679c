package ai.kiln.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

/**
 * {@code kiln-manifest.json}: the files of a model directory with each one's size and sha256, so
 * that a plain static file server can serve the model (no directory listing needed) and every
 * byte received can be checked:
 *
 * <pre>
 * {"format": "kiln-manifest", "version": 1,
 *  "files": [{"path": "config.json", "size": 713, "sha256": "9f86d0..."}, ...]}
 * </pre>
 *
 * @param files sorted by path; each a plain file name in the model directory
 */
public record ModelManifest(List<Entry> files) {

    public static final String FILE_NAME = "kiln-manifest.json";
    static final String FORMAT = "kiln-manifest";
    static final int VERSION = 1;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    // NOTE: names only, no folders: a manifest from a server must not write outside the snapshot.
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]*");

    /** One file: its name, length in bytes and the hex sha256 of its bytes. */
    public record Entry(String path, long size, String sha256) {

        public Entry {
            if (path == null || !NAME.matcher(path).matches() || path.equals(FILE_NAME)) {
                throw new IllegalArgumentException("'" + path + "' is not a file name a manifest may list");
            }
            if (size < 0) {
                throw new IllegalArgumentException(path + ": size " + size + " is negative");
            }
            if (sha256 == null || !SHA256.matcher(sha256).matches()) {
                throw new IllegalArgumentException(path + ": '" + sha256 + "' is not a lowercase hex sha256");
            }
        }
    }

    public ModelManifest {
        files = files.stream().sorted((a, b) -> a.path().compareTo(b.path())).toList();
        List<String> names = files.stream().map(Entry::path).toList();
        if (names.stream().distinct().count() != names.size()) {
            throw new IllegalArgumentException("a file is listed twice: " + names);
        }
        if (!names.contains("config.json")) {
            throw new IllegalArgumentException("the manifest lists no config.json: " + names);
        }
        if (names.stream().noneMatch(n -> n.endsWith(".safetensors"))) {
            throw new IllegalArgumentException("the manifest lists no .safetensors weights: " + names);
        }
    }

    /** Whether a file of a model directory is one a model is loaded from (and so one a manifest lists). */
    public static boolean isModelFile(String name) {
        return ModelFiles.isNeeded(name);
    }

    /** The manifest of a model directory: every file a model needs in it (as a Hub download takes them). */
    public static ModelManifest of(Path dir) throws IOException {
        List<Entry> entries = new ArrayList<>();
        try (DirectoryStream<Path> children = Files.newDirectoryStream(dir)) {
            for (Path child : children) {
                String name = child.getFileName().toString();
                if (Files.isRegularFile(child) && ModelFiles.isNeeded(name)) {
                    entries.add(new Entry(name, Files.size(child), sha256Of(child)));
                }
            }
        }
        try {
            return new ModelManifest(entries);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(dir + " is not a model directory: " + e.getMessage(), e);
        }
    }

    /** Reads a manifest's JSON; a malformed one is refused saying what is wrong. */
    public static ModelManifest parse(byte[] json) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException("not JSON: " + e.getMessage(), e);
        }
        if (root == null || !FORMAT.equals(root.path("format").asText()) || root.path("version").asInt() != VERSION) {
            throw new IllegalArgumentException("not a " + FORMAT + " version " + VERSION + " (its format: '"
                    + (root == null ? "" : root.path("format").asText()) + "', version "
                    + (root == null ? "" : root.path("version").asText()) + ")");
        }
        List<Entry> entries = new ArrayList<>();
        for (JsonNode file : root.path("files")) {
            JsonNode size = file.path("size");
            if (!size.canConvertToLong()) {
                throw new IllegalArgumentException(file.path("path").asText() + ": no integer size");
            }
            entries.add(new Entry(file.path("path").asText(null), size.asLong(), file.path("sha256").asText(null)));
        }
        return new ModelManifest(entries);
    }

    /** The manifest's JSON, as {@link #write} writes it. */
    public byte[] toJson() {
        ObjectNode root = JSON.createObjectNode().put("format", FORMAT).put("version", VERSION);
        ArrayNode array = root.putArray("files");
        files.forEach(f -> array.addObject().put("path", f.path()).put("size", f.size()).put("sha256", f.sha256()));
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Writes {@code dir/kiln-manifest.json} (aside, then moved into place) and returns its path. */
    public Path write(Path dir) throws IOException {
        Path target = dir.resolve(FILE_NAME);
        Path aside = dir.resolve(FILE_NAME + ".incomplete");
        Files.write(aside, toJson());
        HubCache.moveAtomically(aside, target);
        return target;
    }

    /** The lowercase hex sha256 of a file. */
    public static String sha256Of(Path file) throws IOException {
        MessageDigest digest = BlobTransfer.sha256();
        BlobTransfer.digestFile(file, digest);
        return HexFormat.of().formatHex(digest.digest());
    }

    /** A fresh SHA-256 digest. */
    public static MessageDigest sha256Digest() {
        return BlobTransfer.sha256();
    }

    static String sha256Of(byte[] bytes) {
        return HexFormat.of().formatHex(BlobTransfer.sha256().digest(bytes));
    }
}
