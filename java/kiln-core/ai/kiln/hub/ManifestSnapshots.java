package ai.kiln.hub;

import ai.kiln.progress.ByteProgress;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Kiln's cache of models from stores that serve a model directory with a {@code kiln-manifest.json}
 * (file servers, S3): first the manifest, then each file it lists, a few at a time, through {@link
 * BlobTransfer} (resumed, checked against the manifest's sha256, moved into place whole). One
 * folder per model:
 *
 * <pre>
 * ROOT/LABEL--KEY/blobs/SHA256                          a file's bytes, named by their sha256
 * ROOT/LABEL--KEY/snapshots/MANIFEST_SHA256/FILE        a symlink to ../../blobs/SHA256 (a copy where links fail)
 * ROOT/LABEL--KEY/snapshots/MANIFEST_SHA256/kiln-manifest.json   written last: the snapshot is whole
 * ROOT/LABEL--KEY/refs/latest                           the manifest sha256 of the last whole download
 * </pre>
 *
 * LABEL names the store (a host, a bucket), KEY is the start of the sha256 of the model's URL; a
 * model whose manifest changes gets a new snapshot.
 */
public final class ManifestSnapshots {

    static final String LATEST_REF = "latest";

    private final HubSettings settings;
    private final Path root;
    private final PrintStream progressOut;

    /**
     * @param settings the download timeout and HF_HUB_OFFLINE are taken from it
     * @param root the cache's folder
     * @param progressOut where a download's progress is printed (null: nowhere)
     */
    public ManifestSnapshots(HubSettings settings, Path root, PrintStream progressOut) {
        this.settings = settings;
        this.root = root;
        this.progressOut = progressOut;
    }

    /** The cache folder of the model at {@code url}, in a store named {@code label}. */
    public Path modelDir(String label, String url) {
        String key = ModelManifest.sha256Of(url.getBytes(StandardCharsets.UTF_8)).substring(0, 16);
        return root.resolve(label.replaceAll("[^A-Za-z0-9.-]", "_") + "--" + key);
    }

    /** Whether a whole download of the model cached in {@code dir} is on record. */
    public static boolean hasDownload(Path dir) {
        return readRef(dir).isPresent();
    }

    /**
     * The model at {@code url}: the cached snapshot of its current manifest, downloading what it
     * lacks; with HF_HUB_OFFLINE set, the last whole download, the store not asked at all.
     *
     * @param dir its cache folder ({@link #modelDir})
     * @param name the name it is served under
     */
    public LocatedModel locate(String url, Path dir, String name, RemoteModelStore.Files files) {
        if (settings.offline()) {
            Optional<Path> latest = readRef(dir).map(hash -> dir.resolve("snapshots").resolve(hash))
                    .filter(ManifestSnapshots::isWhole);
            return new LocatedModel(latest.orElseThrow(() -> new HubException(url + " is not in the cache (searched "
                    + dir + ") and HF_HUB_OFFLINE is set, so it is not downloaded; unset HF_HUB_OFFLINE")), name);
        }
        byte[] manifestBytes = files.manifest();
        ModelManifest manifest;
        try {
            manifest = ModelManifest.parse(manifestBytes);
        } catch (IllegalArgumentException e) {
            throw new HubException(url + ": its " + ModelManifest.FILE_NAME + " is not a usable manifest: "
                    + e.getMessage(), e);
        }
        String manifestHash = ModelManifest.sha256Of(manifestBytes);
        Path snapshot = dir.resolve("snapshots").resolve(manifestHash);
        if (!isWhole(snapshot)) {
            download(url, dir, snapshot, manifest, manifestBytes, files);
        }
        try {
            writeRef(dir, manifestHash);
        } catch (IOException e) {
            throw new HubException(url + ": writing " + dir.resolve("refs") + " failed: " + e, e);
        }
        return new LocatedModel(snapshot, name);
    }

    /** Whether the snapshot's manifest, written last, is there, and every file it lists. */
    static boolean isWhole(Path snapshot) {
        Path manifest = snapshot.resolve(ModelManifest.FILE_NAME);
        if (!Files.isRegularFile(manifest)) {
            return false;
        }
        try {
            return ModelManifest.parse(Files.readAllBytes(manifest)).files().stream()
                    .allMatch(f -> Files.isRegularFile(snapshot.resolve(f.path())));
        } catch (IOException | IllegalArgumentException e) {
            return false;
        }
    }

    private void download(String url, Path dir, Path snapshot, ModelManifest manifest, byte[] manifestBytes,
            RemoteModelStore.Files files) {
        List<ModelManifest.Entry> missing = manifest.files().stream()
                .filter(f -> !Files.isRegularFile(snapshot.resolve(f.path()))).toList();
        long totalBytes = missing.stream().mapToLong(ModelManifest.Entry::size).sum();
        if (progressOut != null) {
            progressOut.printf("downloading %s into %s: %d file%s, %.2f GB%n", url, dir, missing.size(),
                    missing.size() == 1 ? "" : "s", totalBytes / 1e9);
            progressOut.flush();
        }
        ByteProgress progress = new ByteProgress("downloading", "downloaded %.2f GB", totalBytes, progressOut,
                progressOut == System.err && System.console() != null);
        BlobTransfer transfer = new BlobTransfer(url, settings.downloadTimeout(), files);
        Path blobs = dir.resolve("blobs");
        // NOTE: one transfer per blob: two listed files with the same bytes share it (and its part file).
        List<ModelManifest.Entry> blobsToFetch = missing.stream()
                .collect(java.util.stream.Collectors.toMap(ModelManifest.Entry::sha256, f -> f, (a, b) -> a,
                        java.util.LinkedHashMap::new))
                .values().stream().toList();
        BlobTransfer.inParallel(blobsToFetch, f -> {
            transfer.fetch(new BlobTransfer.Blob(f.path(), f.size(), f.sha256(), blobs.resolve(f.sha256()),
                    blobs.resolve(f.sha256() + ".incomplete")), progress);
            return f;
        });
        progress.finish();
        try {
            for (ModelManifest.Entry f : manifest.files()) {
                HubCache.linkOrCopy(snapshot.resolve(f.path()), blobs.resolve(f.sha256()));
            }
            Path aside = snapshot.resolve(ModelManifest.FILE_NAME + ".incomplete");
            Files.write(aside, manifestBytes);
            HubCache.moveAtomically(aside, snapshot.resolve(ModelManifest.FILE_NAME));
        } catch (IOException e) {
            throw new HubException(url + ": writing the snapshot in " + snapshot + " failed: " + e, e);
        }
    }

    private static Optional<String> readRef(Path dir) {
        Path ref = dir.resolve("refs").resolve(LATEST_REF);
        try {
            return Files.isRegularFile(ref) ? Optional.of(Files.readString(ref, StandardCharsets.UTF_8).strip())
                    .filter(s -> s.matches("[0-9a-f]{64}")) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static void writeRef(Path dir, String manifestHash) throws IOException {
        Path refs = Files.createDirectories(dir.resolve("refs"));
        Path aside = refs.resolve(LATEST_REF + ".incomplete");
        Files.writeString(aside, manifestHash, StandardCharsets.UTF_8);
        HubCache.moveAtomically(aside, refs.resolve(LATEST_REF));
    }
}
