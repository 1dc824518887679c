package ai.kiln.hub;

import ai.kiln.progress.ByteProgress;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Downloads a model from a plain static file server (nginx, an object store's HTTP front) at
 * {@code http(s)://HOST/PATH/}: first {@code PATH/kiln-manifest.json} ({@link ModelManifest}),
 * then each file it lists, a few at a time, through {@link BlobTransfer} (resumed, checked against
 * the manifest's sha256, moved into place whole). The cache, one folder per URL:
 *
 * <pre>
 * ROOT/HOST--KEY/blobs/SHA256                          a file's bytes, named by their sha256
 * ROOT/HOST--KEY/snapshots/MANIFEST_SHA256/FILE        a symlink to ../../blobs/SHA256 (a copy where links fail)
 * ROOT/HOST--KEY/snapshots/MANIFEST_SHA256/kiln-manifest.json   written last: the snapshot is whole
 * ROOT/HOST--KEY/refs/latest                           the manifest sha256 of the last whole download
 * </pre>
 *
 * KEY is the start of the sha256 of the URL; a server whose manifest changes gets a new snapshot.
 */
final class HttpModelDownloader {

    static final String LATEST_REF = "latest";

    private final HubSettings settings;
    private final Path root;
    private final PrintStream progressOut;
    private final HttpClient http;

    /**
     * @param settings the download timeout and HF_HUB_OFFLINE are taken from it
     * @param root the cache of models from file servers
     */
    HttpModelDownloader(HubSettings settings, Path root, PrintStream progressOut) {
        this.settings = settings;
        this.root = root;
        this.progressOut = progressOut;
        this.http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(20)).build();
    }

    /** Whether {@code model} names a file server's model directory: an http:// or https:// URL. */
    static boolean isUrl(String model) {
        String lower = model == null ? "" : model.toLowerCase(Locale.ROOT);
        return lower.startsWith("http://") || lower.startsWith("https://");
    }

    /** {@code url} as a directory URL: its query and fragment refused, a trailing slash added. */
    static URI baseUri(String url) {
        URI uri;
        try {
            uri = URI.create(url);
        } catch (IllegalArgumentException e) {
            throw new HubException("model " + url + " is not a valid URL: " + e.getMessage(), e);
        }
        if (uri.getHost() == null || uri.getRawQuery() != null || uri.getRawFragment() != null) {
            throw new HubException("model " + url + " must be a model directory's URL, http(s)://HOST/PATH/,"
                    + " with no query or fragment");
        }
        String text = uri.toString();
        return URI.create(text.endsWith("/") ? text : text + "/");
    }

    /** The name a model from {@code base} is served under: the URL's last path segment (else the host). */
    static String modelName(URI base) {
        String path = base.getPath() == null ? "" : base.getPath().replaceAll("/+$", "");
        String last = path.substring(path.lastIndexOf('/') + 1);
        return last.isEmpty() ? base.getHost() : last;
    }

    /** The cache folder of the model at {@code base}. */
    Path modelDir(URI base) {
        String host = (base.getHost() + (base.getPort() >= 0 ? "_" + base.getPort() : ""))
                .replaceAll("[^A-Za-z0-9.-]", "_");
        String key = ModelManifest.sha256Of(base.toString().getBytes(StandardCharsets.UTF_8)).substring(0, 16);
        return root.resolve(host + "--" + key);
    }

    /** The model at {@code url}: the cached snapshot of its current manifest, downloading what it lacks. */
    LocatedModel locate(String url) {
        URI base = baseUri(url);
        Path dir = modelDir(base);
        String name = modelName(base);
        if (settings.offline()) {
            Optional<Path> latest = readRef(dir).map(hash -> dir.resolve("snapshots").resolve(hash))
                    .filter(HttpModelDownloader::isWhole);
            return new LocatedModel(latest.orElseThrow(() -> new HubException(base + " is not in the cache (searched "
                    + dir + ") and HF_HUB_OFFLINE is set, so it is not downloaded; unset HF_HUB_OFFLINE")), name);
        }
        URI manifestUri = base.resolve(ModelManifest.FILE_NAME);
        byte[] manifestBytes = fetchManifest(base, manifestUri);
        ModelManifest manifest;
        try {
            manifest = ModelManifest.parse(manifestBytes);
        } catch (IllegalArgumentException e) {
            throw new HubException(base + ": " + manifestUri + " is not a usable manifest: " + e.getMessage(), e);
        }
        String manifestHash = ModelManifest.sha256Of(manifestBytes);
        Path snapshot = dir.resolve("snapshots").resolve(manifestHash);
        if (!isWhole(snapshot)) {
            download(base, dir, snapshot, manifest, manifestBytes);
        }
        try {
            writeRef(dir, manifestHash);
        } catch (IOException e) {
            throw new HubException(base + ": writing " + dir.resolve("refs") + " failed: " + e, e);
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

    private void download(URI base, Path dir, Path snapshot, ModelManifest manifest, byte[] manifestBytes) {
        List<ModelManifest.Entry> missing = manifest.files().stream()
                .filter(f -> !Files.isRegularFile(snapshot.resolve(f.path()))).toList();
        long totalBytes = missing.stream().mapToLong(ModelManifest.Entry::size).sum();
        if (progressOut != null) {
            progressOut.printf("downloading %s into %s: %d file%s, %.2f GB%n", base, dir, missing.size(),
                    missing.size() == 1 ? "" : "s", totalBytes / 1e9);
            progressOut.flush();
        }
        ByteProgress progress = new ByteProgress("downloading", "downloaded %.2f GB", totalBytes, progressOut,
                progressOut == System.err && System.console() != null);
        BlobTransfer.Source source = new BlobTransfer.Source() {
            @Override
            public HttpResponse<InputStream> get(String file, HttpRequest.Builder request) {
                return send(base, file, request.uri(base.resolve(file)), HttpResponse.BodyHandlers.ofInputStream());
            }

            @Override
            public HubException statusError(String file, HttpResponse<?> response) {
                return HttpModelDownloader.statusError(base, file, response);
            }
        };
        BlobTransfer transfer = new BlobTransfer(base.toString(), settings.downloadTimeout(), source);
        Path blobs = dir.resolve("blobs");
        BlobTransfer.inParallel(missing, f -> {
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
            throw new HubException(base + ": writing the snapshot in " + snapshot + " failed: " + e, e);
        }
    }

    private byte[] fetchManifest(URI base, URI manifestUri) {
        HttpResponse<byte[]> response = send(base, ModelManifest.FILE_NAME, HttpRequest.newBuilder(manifestUri).GET(),
                HttpResponse.BodyHandlers.ofByteArray());
        if (response.statusCode() == 404) {
            throw new HubException(base + ": 404 Not Found for " + manifestUri + ": the server has no "
                    + ModelManifest.FILE_NAME + " there; write one into the model directory with `kiln manifest DIR`"
                    + " and serve the directory at that URL");
        }
        if (response.statusCode() != 200) {
            throw statusError(base, ModelManifest.FILE_NAME, response);
        }
        return response.body();
    }

    private <T> HttpResponse<T> send(URI base, String file, HttpRequest.Builder request,
            HttpResponse.BodyHandler<T> body) {
        HttpRequest built = request.setHeader("User-Agent", "kiln").timeout(settings.downloadTimeout()).build();
        try {
            return http.send(built, body);
        } catch (IOException e) {
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            boolean cached = readRef(modelDir(base)).isPresent();
            throw new HubException(base + ": " + file + ": no answer from " + built.uri() + " (" + why + ")"
                    + (cached ? "; set HF_HUB_OFFLINE=1 to use the copy downloaded before" : ""), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException(base + ": interrupted while downloading", e);
        }
    }

    private static HubException statusError(URI base, String file, HttpResponse<?> response) {
        int status = response.statusCode();
        String where = base + ": " + file + ": HTTP " + status + " from " + response.uri();
        return switch (status) {
            case 401, 403 -> new HubException(where + " (" + (status == 401 ? "Unauthorized" : "Forbidden")
                    + "): the server refuses it; Kiln sends no credentials to a file server, so serve the model"
                    + " directory to it openly");
            case 404 -> new HubException(where + " (Not Found): the server lacks a file its manifest lists");
            case 416 -> new HubException(where + " (Range Not Satisfiable): the server's copy is shorter than"
                    + " what was received before; delete " + file + "'s .incomplete file in the cache and run again");
            default -> new HubException(where);
        };
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
