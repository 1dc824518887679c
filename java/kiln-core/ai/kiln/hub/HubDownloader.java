package ai.kiln.hub;

import ai.kiln.progress.ByteProgress;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
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

    /** Files received at once. */
    static final int PARALLEL_FILES = 4;

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
        this.http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER)
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
        List<FileHead> heads = inParallel(missing, file -> head(repo, listing.commit(), file));
        long totalBytes = heads.stream().mapToLong(h -> Math.max(0, h.size())).sum();
        if (progressOut != null) {
            progressOut.printf("downloading %s from %s into %s: %d file%s, %.2f GB%n", repo, settings.endpoint(),
                    cache.repoDir(repo), heads.size(), heads.size() == 1 ? "" : "s", totalBytes / 1e9);
            progressOut.flush();
        }
        ByteProgress progress = new ByteProgress("downloading", "downloaded %.2f GB", totalBytes, progressOut,
                progressOut == System.err && System.console() != null);
        inParallel(heads, head -> {
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
     * Receives one file's bytes into its blob: resumed from what an earlier run left in {@code
     * ETAG.incomplete}, checked, then moved into place. A broken-off transfer keeps what arrived
     * (the next run resumes); a checksum mismatch deletes it.
     */
    void fetchBlob(HubRepo repo, FileHead head, ByteProgress progress) {
        Path blob = cache.blob(repo, head.etag());
        Path part = cache.incompleteBlob(repo, head.etag());
        if (Files.isRegularFile(blob)) {
            progress.advance(Math.max(0, head.size()));
            return;
        }
        try {
            Files.createDirectories(blob.getParent());
            long have = Files.isRegularFile(part) ? Files.size(part) : 0;
            if (head.size() >= 0 && have > head.size()) {
                Files.delete(part);
                have = 0;
            }
            MessageDigest sha256 = sha256();
            if (head.size() < 0 || have < head.size()) {
                have = receive(repo, head, part, have, sha256, progress);
            } else {
                digestFile(part, sha256);
                progress.advance(have);
            }
            if (head.size() >= 0 && have != head.size()) {
                throw new HubException(repo + ": " + head.file() + " ended after " + have + " of " + head.size()
                        + " bytes; what arrived is kept in " + part + ", run again to resume");
            }
            if (head.checksummed()) {
                String actual = HexFormat.of().formatHex(sha256.digest());
                if (!actual.equals(head.etag())) {
                    Files.deleteIfExists(part);
                    throw new HubException(repo + ": " + head.file() + " failed its checksum: the bytes received"
                            + " have sha256 " + actual + ", the Hub announced " + head.etag()
                            + "; the download was deleted, run again");
                }
            }
            cache.completeBlob(repo, head.etag());
        } catch (IOException e) {
            throw new HubException(repo + ": writing " + part + " failed (" + e + "); is the disk full?"
                    + " What was written is kept, run again to resume", e);
        }
    }

    /** Requests the bytes from {@code have} on and appends them to {@code part}; returns its new length. */
    private long receive(HubRepo repo, FileHead head, Path part, long have, MessageDigest sha256,
            ByteProgress progress) throws IOException {
        HttpRequest.Builder request = HttpRequest.newBuilder(head.location()).GET()
                .header("Accept-Encoding", "identity");
        if (have > 0) {
            request.header("Range", "bytes=" + have + "-");
        }
        HttpResponse<InputStream> response = sendFollowing(repo, head.file(), request);
        int status = response.statusCode();
        if (status != 200 && status != 206) {
            response.body().close();
            throw statusError(repo, head.file(), response);
        }
        boolean resumed = status == 206 && have > 0;
        if (resumed) {
            digestFile(part, sha256);
            progress.advance(have);
        } else {
            have = 0;
        }
        InputStream in = response.body();
        StallWatch watch = new StallWatch(in, settings.downloadTimeout());
        try (in; watch;
                OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        resumed ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] buffer = new byte[1 << 20];
            while (true) {
                int n;
                try {
                    n = in.read(buffer);
                } catch (IOException e) {
                    out.flush();
                    String why = watch.stalled() ? "no byte arrived for " + settings.downloadTimeout().toMillis()
                            + " ms (HF_HUB_DOWNLOAD_TIMEOUT)" : e.getMessage();
                    throw new HubException(repo + ": the download of " + head.file() + " broke off after " + have
                            + (head.size() >= 0 ? " of " + head.size() : "") + " bytes (" + why
                            + "); what arrived is kept in " + part + ", run again to resume", e);
                }
                if (n < 0) {
                    break;
                }
                watch.progressed();
                out.write(buffer, 0, n);
                sha256.update(buffer, 0, n);
                have += n;
                progress.advance(n);
            }
        }
        return have;
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

    private static void digestFile(Path file, MessageDigest digest) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buffer = new byte[1 << 20];
            for (int n; (n = in.read(buffer)) > 0; ) {
                digest.update(buffer, 0, n);
            }
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    private static String abbreviate(List<String> files) {
        return files.size() <= 12 ? String.join(", ", files) : String.join(", ", files.subList(0, 12)) + ", ...";
    }

    interface Task<T, R> {
        R run(T item);
    }

    /** Runs {@code task} on every item, {@link #PARALLEL_FILES} at a time; the first failure is thrown. */
    private static <T, R> List<R> inParallel(List<T> items, Task<T, R> task) {
        if (items.isEmpty()) {
            return List.of();
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(PARALLEL_FILES, items.size()), r -> {
            Thread t = new Thread(r, "kiln-hub-download");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<R>> futures = new ArrayList<>();
            for (T item : items) {
                futures.add(pool.submit(() -> task.run(item)));
            }
            List<R> results = new ArrayList<>();
            for (Future<R> future : futures) {
                results.add(future.get());
            }
            return results;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new HubException("a download failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException("interrupted while downloading", e);
        } finally {
            // NOTE: the other transfers are stopped and awaited, so that no thread still appends to
            // an .incomplete file when the next run resumes it.
            pool.shutdownNow();
            try {
                pool.awaitTermination(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
