package ai.kiln.hub;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A local stand-in for the Hugging Face Hub serving one fixture directory as repository {@code
 * ORG/NAME} at one commit, with the Hub's routes and headers: the listing at {@code
 * /api/models/REPO/revision/REV}, {@code /REPO/resolve/REV/FILE} answering LFS files (the
 * safetensors) with a 302 to a storage route carrying X-Linked-Etag (their sha256) and
 * X-Linked-Size, other files directly with their git blob id as the ETag, X-Repo-Commit on both,
 * and Range requests on the storage route. Faults are set per test: a status for the listing or
 * for a file, one flipped byte, a connection closed after so many bytes, a token required.
 */
final class HubFixtureServer implements AutoCloseable {

    static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

    /** A request as it arrived: method, path and the Range and Authorization headers (null where absent). */
    record Request(String method, String path, String range, String authorization) {
    }

    private final HttpServer server;
    // NOTE: LFS bytes come from another origin, as the Hub's come from its storage hosts, so that a
    // test can see the token is not sent there.
    private final HttpServer storage;
    private final String repoId;
    private final Map<String, byte[]> files = new LinkedHashMap<>();
    private final Map<String, String> sha256ByFile = new LinkedHashMap<>();
    private final List<Request> requests = Collections.synchronizedList(new ArrayList<>());

    volatile int listingStatus;
    volatile String listingErrorCode;
    volatile String failingFile;
    volatile int failingFileStatus;
    volatile String flippedByteFile;
    volatile String cutFile;
    volatile long cutAfterBytes;
    volatile String stalledFile;   // sends cutAfterBytes of it, then nothing, holding the connection open
    private final java.util.concurrent.CountDownLatch released = new java.util.concurrent.CountDownLatch(1);
    private final java.util.concurrent.ExecutorService handlers = java.util.concurrent.Executors.newCachedThreadPool();
    volatile String requiredToken;

    HubFixtureServer(Path fixtureDir, String repoId) throws IOException {
        this.repoId = repoId;
        try (Stream<Path> list = Files.list(fixtureDir)) {
            for (Path file : list.filter(Files::isRegularFile).sorted().toList()) {
                byte[] bytes = Files.readAllBytes(file);
                files.put(file.getFileName().toString(), bytes);
                sha256ByFile.put(file.getFileName().toString(), hex("SHA-256", bytes));
            }
        }
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        storage = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        for (HttpServer s : List.of(server, storage)) {
            // Handlers on threads of their own: a stalled answer must not hold back the next request.
            s.setExecutor(handlers);
            s.createContext("/", exchange -> {
                try (exchange) {
                    handle(exchange);
                } catch (IOException e) {
                    // A connection closed on purpose mid-file ends here.
                }
            });
            s.start();
        }
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    String sha256(String file) {
        return sha256ByFile.get(file);
    }

    List<Request> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    private void handle(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getRawPath();
        String authorization = exchange.getRequestHeaders().getFirst("Authorization");
        requests.add(new Request(exchange.getRequestMethod(), path, exchange.getRequestHeaders().getFirst("Range"),
                authorization));
        String listing = "/api/models/" + repoId + "/revision/";
        String resolve = "/" + repoId + "/resolve/";
        if (path.startsWith("/cdn/")) {
            serveStorage(exchange, path.substring("/cdn/".length()));
            return;
        }
        if (requiredToken != null && !("Bearer " + requiredToken).equals(authorization)) {
            error(exchange, 401, "GatedRepo", "Access to model " + repoId + " is restricted.");
            return;
        }
        if (path.startsWith(listing)) {
            serveListing(exchange, path.substring(listing.length()));
        } else if (path.startsWith(resolve)) {
            String rest = path.substring(resolve.length());
            int slash = rest.indexOf('/');
            serveResolve(exchange, rest.substring(0, slash), rest.substring(slash + 1));
        } else {
            error(exchange, 404, "RepoNotFound", "Repository Not Found");
        }
    }

    private void serveListing(HttpExchange exchange, String revision) throws IOException {
        if (listingStatus != 0) {
            error(exchange, listingStatus, listingErrorCode, "listing refused");
            return;
        }
        if (!revision.equals("main") && !revision.equals(COMMIT)) {
            error(exchange, 404, "RevisionNotFound", "Invalid rev id: " + revision);
            return;
        }
        List<Map<String, String>> siblings = files.keySet().stream().map(f -> Map.of("rfilename", f)).toList();
        byte[] body = new ObjectMapper().writeValueAsBytes(Map.of("id", repoId, "sha", COMMIT, "siblings", siblings));
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, body.length);
        exchange.getResponseBody().write(body);
    }

    private void serveResolve(HttpExchange exchange, String revision, String file) throws IOException {
        byte[] bytes = files.get(file);
        if (bytes == null) {
            error(exchange, 404, "EntryNotFound", file + " does not exist");
            return;
        }
        if (file.equals(failingFile)) {
            error(exchange, failingFileStatus, failingFileStatus == 403 ? "GatedRepo" : null, "file refused");
            return;
        }
        exchange.getResponseHeaders().set("X-Repo-Commit", COMMIT);
        if (file.endsWith(".safetensors")) {
            exchange.getResponseHeaders().set("X-Linked-Etag", "\"" + sha256(file) + "\"");
            exchange.getResponseHeaders().set("X-Linked-Size", Long.toString(bytes.length));
            exchange.getResponseHeaders().set("ETag", "\"" + gitBlobId(bytes) + "\"");
            exchange.getResponseHeaders().set("Location", "http://127.0.0.1:" + storage.getAddress().getPort() + "/cdn/" + sha256(file) + "?signature=x");
            exchange.sendResponseHeaders(302, -1);
            return;
        }
        exchange.getResponseHeaders().set("ETag", "\"" + gitBlobId(bytes) + "\"");
        sendBytes(exchange, file, bytes, 0);
    }

    private void serveStorage(HttpExchange exchange, String sha256) throws IOException {
        String file = sha256ByFile.entrySet().stream().filter(e -> e.getValue().equals(sha256)).map(Map.Entry::getKey)
                .findFirst().orElse(null);
        if (file == null) {
            error(exchange, 404, null, "no such object");
            return;
        }
        byte[] bytes = files.get(file);
        if (file.equals(flippedByteFile)) {
            bytes = bytes.clone();
            bytes[bytes.length / 2] ^= 1;
        }
        String range = exchange.getRequestHeaders().getFirst("Range");
        long from = 0;
        if (range != null && range.startsWith("bytes=") && range.endsWith("-")) {
            from = Long.parseLong(range.substring("bytes=".length(), range.length() - 1));
            exchange.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + (bytes.length - 1) + "/"
                    + bytes.length);
        }
        sendBytes(exchange, file, bytes, from);
    }

    private void sendBytes(HttpExchange exchange, String file, byte[] bytes, long from) throws IOException {
        long length = bytes.length - from;
        boolean head = exchange.getRequestMethod().equals("HEAD");
        exchange.sendResponseHeaders(from > 0 ? 206 : 200, head ? -1 : length);
        if (head) {
            return;
        }
        OutputStream out = exchange.getResponseBody();
        if (file.equals(stalledFile)) {
            // Sends part of the promised length, then stalls until the server closes (once).
            stalledFile = null;
            out.write(bytes, (int) from, (int) Math.min(cutAfterBytes, length));
            out.flush();
            try {
                released.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return;
        }
        if (file.equals(cutFile)) {
            // Sends part of the promised length, then closes the connection (the fault fires once).
            cutFile = null;
            out.write(bytes, (int) from, (int) Math.min(cutAfterBytes, length));
            out.flush();
            exchange.close();
            return;
        }
        out.write(bytes, (int) from, (int) length);
    }

    private static void error(HttpExchange exchange, int status, String code, String message) throws IOException {
        if (code != null) {
            exchange.getResponseHeaders().set("X-Error-Code", code);
        }
        exchange.getResponseHeaders().set("X-Error-Message", message);
        byte[] body = ("{\"error\":\"" + message + "\"}").getBytes(StandardCharsets.UTF_8);
        boolean head = exchange.getRequestMethod().equals("HEAD");
        exchange.sendResponseHeaders(status, head ? -1 : body.length);
        if (!head) {
            exchange.getResponseBody().write(body);
        }
    }

    /** Git's id of a blob: sha1 of "blob LENGTH\0" and the bytes, which the Hub sends as a non-LFS file's ETag. */
    static String gitBlobId(byte[] bytes) {
        byte[] header = ("blob " + bytes.length + "\0").getBytes(StandardCharsets.US_ASCII);
        byte[] all = new byte[header.length + bytes.length];
        System.arraycopy(header, 0, all, 0, header.length);
        System.arraycopy(bytes, 0, all, header.length, bytes.length);
        return hex("SHA-1", all);
    }

    static String hex(String algorithm, byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        released.countDown();
        server.stop(0);
        storage.stop(0);
        handlers.shutdownNow();
    }
}
