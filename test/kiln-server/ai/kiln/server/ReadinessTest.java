package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code /ready}, what a balancer or Kubernetes routes by: 503 while the model loads, 200 once it is
 * served, and 503 again from the first moment of a drain, while the requests in flight still
 * finish; a drain begun during the load is not undone by the load finishing.
 */
class ReadinessTest {

    @Test
    void notReadyWhileTheModelLoadsThenReady() throws Exception {
        KilnServer server = new KilnServer(ServerHarness.serverOptions(), new PrintStream(new ByteArrayOutputStream()))
                .start();
        try (Engine engine = Engine.create(ServerHarness.FIXTURE.dir(), ServerHarness.engineOptions().build())) {
            try {
                String base = "http://127.0.0.1:" + server.port();
                BadInputTest.assertError(get(base + "/ready"), 503, null, "loading", "loading");
                assertEquals(200, get(base + "/health").statusCode());
                server.serve(engine, Tokenizer.load(ServerHarness.FIXTURE.dir()), ServerHarness.MODEL);
                assertEquals(200, get(base + "/ready").statusCode());
            } finally {
                server.close();
            }
        }
    }

    @Test
    void notReadyFromTheStartOfADrainWhileRequestsStillFinish() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            assertEquals(200, harness.get("/ready").statusCode());
            // NOTE: a client that does not read, behind small socket buffers, holds its streamed
            // answer unfinished for as long as the test likes: the drain must wait for it.
            harness.server.socketSendBufferBytes(4096);
            ExecutorService pool = Executors.newSingleThreadExecutor();
            try (Socket stalled = new Socket()) {
                stalled.setReceiveBufferSize(4096);
                stalled.connect(new InetSocketAddress("127.0.0.1", harness.server.port()), 10_000);
                byte[] body = LoadBehaviourTest.LONG_STREAM.getBytes(StandardCharsets.UTF_8);
                stalled.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        + "Content-Type: application/json\r\nContent-Length: " + body.length + "\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                stalled.getOutputStream().write(body);
                assertTrue(awaitGenerated(harness, 480), "the stalled request did not generate its tokens");

                Future<Boolean> drain = pool.submit(() -> harness.server.drain(Duration.ofSeconds(60)));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (harness.server.state() != KilnServer.State.DRAINING && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                BadInputTest.assertError(harness.get("/ready"), 503, null, "draining", "shutting down");
                BadInputTest.assertError(harness.post("/v1/completions", RoutingTest.COMPLETION), 503, null,
                        "draining");
                assertFalse(drain.isDone(), "the drain ended while a response was still unsent");

                String answer = readToTheEnd(stalled.getInputStream());
                assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
                assertTrue(answer.contains("data: [DONE]"), "the stream was cut, not finished");
                assertTrue(drain.get(30, TimeUnit.SECONDS), "the drain cancelled a request that had finished");
                BadInputTest.assertError(harness.get("/ready"), 503, null, "draining", "shutting down");
                assertEquals(200, harness.get("/health").statusCode());
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void aDrainBegunWhileTheModelLoadsIsNotUndoneByTheLoad() throws Exception {
        KilnServer server = new KilnServer(ServerHarness.serverOptions(), new PrintStream(new ByteArrayOutputStream()))
                .start();
        try (Engine engine = Engine.create(ServerHarness.FIXTURE.dir(), ServerHarness.engineOptions().build())) {
            try {
                String base = "http://127.0.0.1:" + server.port();
                assertTrue(server.drain(Duration.ofSeconds(1)));
                server.serve(engine, Tokenizer.load(ServerHarness.FIXTURE.dir()), ServerHarness.MODEL);
                assertEquals(KilnServer.State.DRAINING, server.state());
                BadInputTest.assertError(get(base + "/ready"), 503, null, "draining", "shutting down");
                BadInputTest.assertError(post(base + "/v1/completions", RoutingTest.COMPLETION), 503, null,
                        "draining");
            } finally {
                server.close();
            }
        }
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private HttpResponse<String> get(String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String url, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** Waits until the engine has generated {@code tokens} tokens in all, at most 60 s. */
    private static boolean awaitGenerated(ServerHarness harness, int tokens) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (harness.engine.metrics().generationTokens() < tokens) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(5);
        }
        return true;
    }

    /** Reads the chunked SSE answer until its last chunk. */
    private static String readToTheEnd(InputStream in) throws Exception {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        while (!got.toString(StandardCharsets.UTF_8).endsWith("\r\n0\r\n\r\n")) {
            int n = in.read(buffer);
            if (n < 0) {
                break;
            }
            got.write(buffer, 0, n);
        }
        return got.toString(StandardCharsets.UTF_8);
    }
}
