package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** A non-streamed request whose client closes its connection is cancelled, as for a stream. */
class ClientGoneTest {

    // 4 prompts x 64 completions x 480 tokens: far longer than the test waits.
    static final String LONG_BATCH = "{\"model\": \"llama3-gqa\", \"prompt\": [\"x\", \"x\", \"x\", \"x\"], \"n\": 64,"
            + " \"max_tokens\": 480, \"ignore_eos\": true}";
    static final long ASKED_TOKENS = 4L * 64 * 480;

    @Test
    void aClosedConnectionCancelsItsNonStreamedRequestWithinASecond() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            long generatedBefore = harness.engine.metrics().generationTokens();
            long generatedAtClose;
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", harness.server.port()), 10_000);
                byte[] body = LONG_BATCH.getBytes(StandardCharsets.UTF_8);
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (harness.engine.metrics().generationTokens() == generatedBefore && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                Thread.sleep(300);
                assertTrue(harness.engine.metrics().numRunning() > 0, "the request is not running");
                generatedAtClose = harness.engine.metrics().generationTokens();
                // An orderly close (FIN), as a client that gives up and closes its socket does.
            }
            long closedAt = System.nanoTime();
            assertTrue(harness.awaitEngineIdle(Duration.ofMillis(1500)), "still running 1.5 s after the client closed: "
                    + harness.engine.metrics());
            long idleMs = (System.nanoTime() - closedAt) / 1_000_000;
            long afterClose = harness.engine.metrics().generationTokens() - generatedAtClose;
            long generated = harness.engine.metrics().generationTokens() - generatedBefore;
            assertTrue(generated < ASKED_TOKENS / 2, "the request ran on: " + generated + " of " + ASKED_TOKENS);
            System.out.println("client gone: engine idle " + idleMs + " ms after the close; " + afterClose
                    + " tokens generated after it");
            String metrics = harness.get("/metrics").body();
            assertEquals(1.0, LoadBehaviourTest.metricValue(metrics, "kiln_requests_cancelled_total"), metrics);
            assertEquals(200, harness.post("/v1/completions", "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\"}")
                    .statusCode());
        }
    }

    @Test
    void aRequestAnsweredNormallyKeepsItsConnection() throws Exception {
        // The watch for a gone client must not disturb a connection whose client stays.
        try (ServerHarness harness = ServerHarness.start()) {
            for (int i = 0; i < 20; i++) {
                assertEquals(200, harness.post("/v1/completions", "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\","
                        + " \"max_tokens\": 4}").statusCode());
            }
            String metrics = harness.get("/metrics").body();
            assertEquals(0.0, LoadBehaviourTest.metricValue(metrics, "kiln_requests_cancelled_total"), metrics);
        }
    }
}
