package ai.kiln.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * Downloads a model from a plain static file server (nginx, an object store's HTTP front) at
 * {@code http(s)://HOST/PATH/}: {@code PATH/kiln-manifest.json} ({@link ModelManifest}), then each
 * file it lists, into Kiln's cache ({@link ManifestSnapshots}; the cache label is the host).
 */
final class HttpModelDownloader {

    private final HubSettings settings;
    private final ManifestSnapshots snapshots;
    private final HttpClient http;

    /**
     * @param settings the download timeout and HF_HUB_OFFLINE are taken from it
     * @param root the cache of models from file servers
     */
    HttpModelDownloader(HubSettings settings, Path root, PrintStream progressOut) {
        this.settings = settings;
        this.snapshots = new ManifestSnapshots(settings, root, progressOut);
        // NOTE: HTTP/1.1, so that a file's ranges (BlobTransfer) travel on connections of their own
        // rather than as streams of one HTTP/2 connection, which one TCP window would limit.
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).followRedirects(HttpClient.Redirect.NORMAL)
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
        return snapshots.modelDir(base.getHost() + (base.getPort() >= 0 ? "_" + base.getPort() : ""), base.toString());
    }

    /** The model at {@code url}: the cached snapshot of its current manifest, downloading what it lacks. */
    LocatedModel locate(String url) {
        URI base = baseUri(url);
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
        RemoteModelStore.Ranges blobs = BlobTransfer.overHttp(source);
        RemoteModelStore.Files files = new RemoteModelStore.Files() {
            @Override
            public byte[] manifest() {
                return fetchManifest(base, base.resolve(ModelManifest.FILE_NAME));
            }

            @Override
            public RemoteModelStore.Body open(String file, long from, long to) {
                return blobs.open(file, from, to);
            }
        };
        return snapshots.locate(base.toString(), modelDir(base), modelName(base), files);
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
            boolean cached = ManifestSnapshots.hasDownload(modelDir(base));
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
}
