package ai.kiln.hub;

import ai.kiln.progress.ByteProgress;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Downloads a model's files from the Hub into the {@link HubCache} through the Hub's HTTP API, as
 * huggingface_hub's snapshot_download does: the revision's file listing ({@code GET
 * /api/models/REPO/revision/REV}: its commit and files), then each file the model needs from
 * {@code /REPO/resolve/COMMIT/FILE}, a few at a time. Each file is received into {@code
 * blobs/ETAG.incomplete} (resumed with a Range request where an earlier run broke off), its sha256
 * checked against the ETag for LFS files, then moved into place; the snapshot entries and the ref
 * come only after every file is whole.
 */
final class HubDownloader {

    private static final int MAX_REDIRECTS = 10;
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HubSettings settings;
    private final HubCache cache;
    private final PrintStream progressOut;
    private final HttpClient http;

    HubDownloader(HubSettings settings, HubCache cache, PrintStream progressOut) {
        this.settings = settings;
        this.cache = cache;
        this.progressOut = progressOut;
        // NOTE: redirects are followed by hand: the Hub's first answer carries the file's ETag and
        // commit, and the bearer token must not travel on to the storage host it redirects to.
        // NOTE: HTTP/1.1, so that a file's ranges (BlobTransfer) travel on connections of their own
        // rather than as streams of one HTTP/2 connection, which one TCP window would limit.
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(Duration.ofSeconds(20)).build();
    }

    /** What the listing says of a revision: the commit it points to and the model's files in it. */
    record Listing(String commit, List<String> files) {
    }

    /** What the Hub's first answer for a file says: the bytes' name, size, and where to get them. */
    record FileHead(String file, String etag, long size, URI location) {

        /** LFS files are named by the sha256 of their bytes, which is then checked. */
        boolean checksummed() {
            return SHA256.matcher(etag).matches();
        }
    }

    /** Downloads what the cache lacks of the revision and returns its snapshot directory. */
    Path download(HubRepo repo) {
        Listing listing = listing(repo);
        Path snapshot = cache.snapshotDir(repo, listing.commit());
        List<String> missing = listing.files().stream().filter(f -> !Files.isRegularFile(snapshot.resolve(f))).toList();
        List<FileHead> heads = BlobTransfer.inParallel(missing, file -> head(repo, listing.commit(), file));
        long totalBytes = heads.stream().mapToLong(h -> Math.max(0, h.size())).sum();
        if (progressOut != null) {
            progressOut.printf("downloading %s from %s into %s: %d file%s, %.2f GB%n", repo, settings.endpoint(),
                    cache.repoDir(repo), heads.size(), heads.size() == 1 ? "" : "s", totalBytes / 1e9);
            progressOut.flush();
        }
        ByteProgress progress = new ByteProgress("downloading", "downloaded %.2f GB", totalBytes, progressOut,
                progressOut == System.err && System.console() != null);
        BlobTransfer.inParallel(heads, head -> {
            fetchBlob(repo, head, progress);
            return head;
        });
        progress.finish();
        try {
            for (FileHead head : heads) {
                cache.linkIntoSnapshot(repo, listing.commit(), head.file(), head.etag());
            }
            cache.writeRef(repo, listing.commit());
        } catch (IOException e) {
            throw new HubException(repo + ": writing the snapshot in " + snapshot + " failed: " + e, e);
        }
        List<String> stillMissing = HubCache.missingForModel(snapshot);
        if (!stillMissing.isEmpty()) {
            throw new HubException(repo + ": the snapshot " + snapshot + " still lacks " + String.join(", ", stillMissing));
        }
        return snapshot;
    }

    /** The revision's commit and the files of it a model needs, from {@code /api/models/REPO/revision/REV}. */
    Listing listing(HubRepo repo) {
        URI uri = URI.create(settings.endpoint() + "/api/models/" + repo.id() + "/revision/" + encode(repo.revision()));
        HttpResponse<String> response = send(repo, null, HttpRequest.newBuilder(uri).GET(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw statusError(repo, null, response);
        }
        JsonNode body;
        try {
            body = JSON.readTree(response.body());
        } catch (IOException e) {
            throw new HubException(repo + ": " + uri + " answered with no JSON file listing: " + e.getMessage(), e);
        }
        String commit = body.path("sha").asText("");
        if (!commit.matches("[0-9a-f]{40}")) {
            throw new HubException(repo + ": " + uri + " names no commit (sha: '" + commit + "')");
        }
        List<String> all = new ArrayList<>();
        body.path("siblings").forEach(s -> all.add(s.path("rfilename").asText("")));
        List<String> needed = all.stream().filter(ModelFiles::isNeeded).sorted().toList();
        if (!needed.contains("config.json")) {
            throw new HubException(repo + " has no config.json: not a transformers model repository (its files: "
                    + abbreviate(all) + ")");
        }
        if (needed.stream().noneMatch(f -> f.endsWith(".safetensors"))) {
            throw new HubException(repo + " has no .safetensors weights, which Kiln loads (its files: "
                    + abbreviate(all) + ")");
        }
        return new Listing(commit, needed);
    }

    /**
     * A HEAD of {@code /REPO/resolve/COMMIT/FILE}, following the Hub's own redirects (a renamed
     * repository) up to the one that sends an LFS file to its storage (X-Linked-Etag).
     */
    FileHead head(HubRepo repo, String commit, String file) {
        URI uri = resolveUri(repo, commit, file);
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpResponse<Void> response = send(repo, file, HttpRequest.newBuilder(uri)
                    .method("HEAD", HttpRequest.BodyPublishers.noBody()).header("Accept-Encoding", "identity"),
                    HttpResponse.BodyHandlers.discarding());
            int status = response.statusCode();
            String linkedEtag = header(response, "X-Linked-Etag");
            if (status >= 300 && status < 400 && linkedEtag == null) {
                uri = location(repo, file, response);
                continue;
            }
            if (status >= 400) {
                throw statusError(repo, file, response);
            }
            String repoCommit = header(response, "X-Repo-Commit");
            if (repoCommit != null && !repoCommit.equals(commit)) {
                throw new HubException(repo + ": the Hub answered " + file + " from commit " + repoCommit
                        + ", not the listing's " + commit);
            }
            String etag = normalizeEtag(linkedEtag != null ? linkedEtag : header(response, "ETag"));
            if (etag == null) {
                throw new HubException(repo + ": the Hub sent no ETag for " + file + " (" + uri
                        + "), so its bytes cannot be named in the cache");
            }
            String sizeHeader = linkedEtag != null ? header(response, "X-Linked-Size") : header(response, "Content-Length");
            long size = sizeHeader == null ? -1 : Long.parseLong(sizeHeader.strip());
            return new FileHead(file, etag, size, linkedEtag != null ? location(repo, file, response) : uri);
        }
        throw new HubException(repo + ": more than " + MAX_REDIRECTS + " redirects for " + file);
    }

    /**
     * Receives one file's bytes into its blob through {@link BlobTransfer}: resumed from what an
     * earlier run left in {@code ETAG.incomplete}, checked (LFS files), then moved into place.
     */
    void fetchBlob(HubRepo repo, FileHead head, ByteProgress progress) {
        BlobTransfer.Blob blob = new BlobTransfer.Blob(head.file(), head.size(),
                head.checksummed() ? head.etag() : null, cache.blob(repo, head.etag()),
                cache.incompleteBlob(repo, head.etag()));
        new BlobTransfer(repo.toString(), settings.downloadTimeout(), new BlobTransfer.Source() {
            @Override
            public HttpResponse<InputStream> get(String file, HttpRequest.Builder request) {
                return sendFollowing(repo, file, request.uri(head.location()));
            }

            @Override
            public HubException statusError(String file, HttpResponse<?> response) {
                return HubDownloader.this.statusError(repo, file, response);
            }
        }).fetch(blob, progress);
    }

    /** Sends {@code request}, following redirects; the token goes only to the endpoint's own host. */
    private HttpResponse<InputStream> sendFollowing(HubRepo repo, String file, HttpRequest.Builder request) {
        HttpRequest built = request.build();
        URI uri = built.uri();
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpResponse<InputStream> response = send(repo, file, request, HttpResponse.BodyHandlers.ofInputStream());
            int status = response.statusCode();
            if (status < 300 || status >= 400) {
                return response;
            }
            try {
                response.body().close();
            } catch (IOException ignored) {
                // Only the Location header is wanted.
            }
            uri = location(repo, file, response);
            request = copyTo(built, uri);
        }
        throw new HubException(repo + ": more than " + MAX_REDIRECTS + " redirects for " + file);
    }

    private static HttpRequest.Builder copyTo(HttpRequest request, URI uri) {
        HttpRequest.Builder copy = HttpRequest.newBuilder(uri).method(request.method(), HttpRequest.BodyPublishers.noBody());
        request.headers().map().forEach((name, values) -> {
            if (!name.equalsIgnoreCase("Authorization")) {
                values.forEach(v -> copy.header(name, v));
            }
        });
        return copy;
    }

    private <T> HttpResponse<T> send(HubRepo repo, String file, HttpRequest.Builder request,
            HttpResponse.BodyHandler<T> body) {
        HttpRequest built = request.setHeader("User-Agent", "kiln").timeout(settings.downloadTimeout()).build();
        if (settings.token() != null && sameOrigin(built.uri(), settings.endpoint())
                && built.headers().firstValue("Authorization").isEmpty()) {
            built = copyWithToken(built);
        }
        try {
            return http.send(built, body);
        } catch (IOException e) {
            throw new HubException(repo + ": " + (file == null ? "" : file + ": ") + "no answer from " + built.uri()
                    + " (" + e + "); set HF_HUB_OFFLINE=1 to use the cache alone", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException(repo + ": interrupted while downloading", e);
        }
    }

    private HttpRequest copyWithToken(HttpRequest request) {
        HttpRequest.Builder copy = HttpRequest.newBuilder(request.uri())
                .method(request.method(), HttpRequest.BodyPublishers.noBody());
        request.headers().map().forEach((name, values) -> values.forEach(v -> copy.header(name, v)));
        return copy.header("Authorization", "Bearer " + settings.token()).build();
    }

    private static boolean sameOrigin(URI a, URI b) {
        return Objects.equals(a.getScheme(), b.getScheme()) && Objects.equals(a.getHost(), b.getHost())
                && a.getPort() == b.getPort();
    }

    /** The error a failed answer means, saying what to do about it. */
    private HubException statusError(HubRepo repo, String file, HttpResponse<?> response) {
        int status = response.statusCode();
        String code = header(response, "X-Error-Code");
        String message = header(response, "X-Error-Message");
        String said = message == null ? "" : " (the Hub says: " + message + ")";
        String what = file == null ? repo.toString() : repo + ": " + file;
        String tokenAdvice = settings.token() == null
                ? "set HF_TOKEN to a token of an account that may read it"
                : "the token in HF_TOKEN was sent and refused; use one of an account that may read it";
        return switch (status) {
            case 401 -> new HubException(what + ": 401 Unauthorized from " + settings.endpoint()
                    + ": the repository is private or gated, or does not exist; " + tokenAdvice + said);
            case 403 -> new HubException(what + ": 403 Forbidden from " + settings.endpoint() + ": the repository is"
                    + " gated (accept its conditions on its Hub page) or private; " + tokenAdvice + said);
            case 404 -> new HubException(what + ": 404 Not Found from " + settings.endpoint() + ": "
                    + ("RevisionNotFound".equals(code) ? "no revision '" + repo.revision() + "' in " + repo.id()
                            : "EntryNotFound".equals(code) ? "no file " + file + " in the revision"
                                    : "no repository " + repo.id() + " (or no revision '" + repo.revision() + "')")
                    + said);
            default -> new HubException(what + ": HTTP " + status + " from " + response.uri() + said);
        };
    }

    private static URI location(HubRepo repo, String file, HttpResponse<?> response) {
        String location = header(response, "Location");
        if (location == null) {
            throw new HubException(repo + ": " + file + ": a redirect (" + response.statusCode() + ") with no Location");
        }
        return response.uri().resolve(location);
    }

    private URI resolveUri(HubRepo repo, String commit, String file) {
        StringBuilder path = new StringBuilder();
        for (String part : file.split("/")) {
            path.append('/').append(encode(part));
        }
        return URI.create(settings.endpoint() + "/" + repo.id() + "/resolve/" + commit + path);
    }

    private static String encode(String part) {
        return URLEncoder.encode(part, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String header(HttpResponse<?> response, String name) {
        return response.headers().firstValue(name).orElse(null);
    }

    /** The ETag's value without its weak marker and quotes: {@code W/"abc"} is {@code abc}. */
    static String normalizeEtag(String etag) {
        if (etag == null) {
            return null;
        }
        String value = etag.strip();
        if (value.startsWith("W/")) {
            value = value.substring(2);
        }
        if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
            value = value.substring(1, value.length() - 1);
        }
        // The name becomes a file name in blobs/.
        return value.isEmpty() || !value.matches("[A-Za-z0-9._-]+") || value.startsWith(".") ? null
                : value.toLowerCase(Locale.ROOT);
    }

    private static String abbreviate(List<String> files) {
        return files.size() <= 12 ? String.join(", ", files) : String.join(", ", files.subList(0, 12)) + ", ...";
    }
}
