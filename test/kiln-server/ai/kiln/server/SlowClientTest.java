package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Clients that send their requests slowly, or open connections and send nothing, cannot keep the
 * server from answering others; and what they hold is taken back within the configured limits.
 */
class SlowClientTest {

    static final String COMPLETION = "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"max_tokens\": 4}";
    static final int SLOW_CLIENTS = 300;

    @Test
    void hundredsOfSlowBodiesDoNotStarveHealthOrCompletions() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            assertServesThroughSlowBodies(harness, "");
        }
    }

    @Test
    void hundredsOfSlowUnauthenticatedBodiesDoNotStarveTheServer() throws Exception {
        String key = "sk-slow-test";
        try (ServerHarness harness = ServerHarness.start(ServerHarness.serverOptions().withApiKey(key),
                ServerHarness.engineOptions().build())) {
            assertServesThroughSlowBodies(harness, "Authorization: Bearer " + key + "\r\n");
        }
    }

    /**
     * Opens {@link #SLOW_CLIENTS} connections that each send headers announcing 1000 bytes, then
     * one byte now and then; meanwhile /health and a completion must each answer within a second.
     */
    private static void assertServesThroughSlowBodies(ServerHarness harness, String auth) throws Exception {
        List<Socket> slow = new ArrayList<>();
        try {
            for (int i = 0; i < SLOW_CLIENTS; i++) {
                Socket s = connect(harness);
                s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
                        .getBytes(StandardCharsets.US_ASCII));
                slow.add(s);
            }
            Thread.sleep(200);
            for (int round = 0; round < 3; round++) {
                for (Socket s : slow) {
                    try {
                        s.getOutputStream().write(' ');
                    } catch (IOException e) {
                        // The server may already have cut this one off: that is allowed.
                    }
                }
                long t0 = System.nanoTime();
                HttpResponse<String> health = harness.send(HttpRequest.newBuilder(URI.create(harness.base + "/health"))
                        .timeout(Duration.ofSeconds(5)).GET().build());
                long healthMs = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(200, health.statusCode());
                t0 = System.nanoTime();
                HttpRequest.Builder completion = HttpRequest.newBuilder(URI.create(harness.base + "/v1/completions"))
                        .timeout(Duration.ofSeconds(5)).header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(COMPLETION));
                if (!auth.isEmpty()) {
                    completion.header("Authorization", auth.substring("Authorization: ".length()).trim());
                }
                HttpResponse<String> answered = harness.send(completion.build());
                long completionMs = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(200, answered.statusCode(), answered.body());
                assertTrue(healthMs < 1000 && completionMs < 1000, "under " + SLOW_CLIENTS
                        + " slow bodies /health took " + healthMs + " ms and a completion " + completionMs + " ms");
                System.out.println("under " + SLOW_CLIENTS + " slow bodies: /health " + healthMs + " ms, a completion "
                        + completionMs + " ms");
                Thread.sleep(300);
            }
        } finally {
            for (Socket s : slow) {
                s.close();
            }
        }
    }

    @Test
    void aBodyBelowTheMinimumRateGets408AndItsConnectionIsClosed() throws Exception {
        KilnServer.Options options = ServerHarness.serverOptions().withConnectionLimits(
                new KilnServer.ConnectionLimits(64, Duration.ofSeconds(60), Duration.ofSeconds(10),
                        Duration.ofSeconds(30), 1000));
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().build());
                Socket s = connect(harness)) {
            long t0 = System.nanoTime();
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            String response = trickleUntilAnswered(s, 200);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(response.startsWith("HTTP/1.1 408"), response);
            assertTrue(response.contains("request_timeout"), response);
            assertTrue(response.toLowerCase().contains("connection: close"), response);
            assertTrue(ms < KilnServer.ConnectionLimits.RATE_GRACE.toMillis() + 2000, "cut off after " + ms + " ms");
        }
    }

    @Test
    void aBodyOverItsTimeLimitGets408() throws Exception {
        KilnServer.Options options = ServerHarness.serverOptions().withConnectionLimits(
                new KilnServer.ConnectionLimits(64, Duration.ofSeconds(60), Duration.ofSeconds(10),
                        Duration.ofMillis(1500), 0));
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().build());
                Socket s = connect(harness)) {
            long t0 = System.nanoTime();
            s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            String response = trickleUntilAnswered(s, 100);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(response.startsWith("HTTP/1.1 408"), response);
            assertTrue(ms >= 1400 && ms < 3500, "cut off after " + ms + " ms");
        }
    }

    @Test
    void slowHeadersAreCutAtTheHeaderTimeout() throws Exception {
        KilnServer.Options options = ServerHarness.serverOptions().withConnectionLimits(
                new KilnServer.ConnectionLimits(64, Duration.ofSeconds(60), Duration.ofSeconds(1),
                        Duration.ofSeconds(30), 1000));
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().build());
                Socket s = connect(harness)) {
            long t0 = System.nanoTime();
            OutputStream out = s.getOutputStream();
            out.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n".getBytes(StandardCharsets.US_ASCII));
            boolean closed = false;
            s.setSoTimeout(100);
            for (int i = 0; i < 40 && !closed; i++) {
                try {
                    out.write("X-Slow: y\r\n".getBytes(StandardCharsets.US_ASCII));
                    closed = s.getInputStream().read() < 0;
                } catch (SocketTimeoutException e) {
                    // still open
                } catch (IOException e) {
                    closed = true;
                }
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(closed, "a request whose headers never end was kept open for " + ms + " ms");
            assertTrue(ms < 2500, "closed after " + ms + " ms");
            assertEquals(200, harness.get("/health").statusCode());
        }
    }

    @Test
    void atTheConnectionCapTheIdlestConnectionIsClosedFirst() throws Exception {
        int cap = 16;
        KilnServer.Options options = ServerHarness.serverOptions().withConnectionLimits(
                new KilnServer.ConnectionLimits(cap, Duration.ofSeconds(60), Duration.ofSeconds(10),
                        Duration.ofSeconds(30), 1000));
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().build())) {
            List<Socket> idle = new ArrayList<>();
            try {
                for (int i = 0; i < 3 * cap; i++) {
                    idle.add(connect(harness));
                    Thread.sleep(5);
                }
                long t0 = System.nanoTime();
                HttpResponse<String> health = harness.send(HttpRequest.newBuilder(URI.create(harness.base + "/health"))
                        .timeout(Duration.ofSeconds(5)).GET().build());
                long ms = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(200, health.statusCode());
                assertTrue(ms < 1000, "/health took " + ms + " ms with " + idle.size() + " idle connections");
                assertTrue(isClosedByServer(idle.get(0)), "the connection idle longest is still open");
                assertTrue(!isClosedByServer(idle.get(idle.size() - 1)), "the newest connection was closed");
            } finally {
                for (Socket s : idle) {
                    s.close();
                }
            }
        }
    }

    @Test
    void aCapReachedWhileEveryConnectionWasAnsweredIsRelievedOnceTheyIdle() throws Exception {
        int cap = 4;
        KilnServer.Options options = ServerHarness.serverOptions().withConnectionLimits(
                new KilnServer.ConnectionLimits(cap, Duration.ofSeconds(60), Duration.ofSeconds(10),
                        Duration.ofSeconds(30), 1000));
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().build())) {
            List<Socket> held = new ArrayList<>();
            try {
                // Three connections being answered when the fourth reaches the cap: none of them
                // may be closed then, and the connector accepts no one after.
                String body = "{\"model\": \"llama3-gqa\", \"prompt\": \"x\", \"max_tokens\": 300,"
                        + " \"ignore_eos\": true, \"temperature\": 0}";
                for (int i = 0; i < cap - 1; i++) {
                    Socket s = connect(harness);
                    s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            + "Content-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
                            .getBytes(StandardCharsets.US_ASCII));
                    held.add(s);
                }
                held.add(connect(harness));
                for (int i = 0; i < cap - 1; i++) {
                    String answer = BodyBufferBudgetTest.readAnswer(held.get(i), 20_000);
                    assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
                }
                // All four now wait idle for a request: a new client must still get in.
                long t0 = System.nanoTime();
                HttpResponse<String> health = harness.send(HttpRequest.newBuilder(URI.create(harness.base + "/health"))
                        .timeout(Duration.ofSeconds(5)).GET().build());
                long ms = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(200, health.statusCode());
                assertTrue(ms < 2000, "/health took " + ms + " ms at the cap");
            } finally {
                for (Socket s : held) {
                    s.close();
                }
            }
        }
    }

    static Socket connect(ServerHarness harness) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", harness.server.port()), 10_000);
        return s;
    }

    /** Sends one body byte every {@code everyMs} until the server answers (at most 10 s); the answer. */
    static String trickleUntilAnswered(Socket s, int everyMs) throws IOException {
        s.setSoTimeout(everyMs);
        InputStream in = s.getInputStream();
        StringBuilder response = new StringBuilder();
        byte[] buf = new byte[4096];
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline) {
            try {
                int n = in.read(buf);
                if (n < 0) {
                    break;
                }
                response.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                continue;
            } catch (SocketTimeoutException e) {
                if (!response.isEmpty()) {
                    break;
                }
            }
            try {
                s.getOutputStream().write('x');
            } catch (IOException e) {
                // cut off; what was answered is read above
            }
        }
        return response.toString();
    }

    /** True when the server has closed the connection (EOF or reset) within half a second. */
    static boolean isClosedByServer(Socket s) throws IOException {
        s.setSoTimeout(500);
        try {
            return s.getInputStream().read() < 0;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true;
        }
    }
}
