package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Behaviour under load: clients that go away, a full waiting queue, quiet streams. */
class LoadBehaviourTest {

    static final String LONG_STREAM = "{\"model\": \"llama3-gqa\", \"prompt\": \"Tell me a long story\","
            + " \"max_tokens\": 480, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}";

    @Test
    void clientDisconnectingMidStreamIsCancelledAndItsBlocksFreed() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            long generatedBefore = harness.engine.metrics().generationTokens();
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", harness.server.port()), 10_000);
                socket.setSoTimeout(30_000);
                byte[] body = LONG_STREAM.getBytes(StandardCharsets.UTF_8);
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                        StandardCharsets.UTF_8));
                assertTrue(in.readLine().startsWith("HTTP/1.1 200"));
                String line;
                while ((line = in.readLine()) != null && !line.startsWith("data: ")) {
                    // headers, then the first event
                }
                assertTrue(line != null, "no event before the end of the stream");
                assertTrue(harness.engine.metrics().kvCacheUsage() > 0, "the request holds KV blocks while it runs");
                // Abortive close (RST), as a client process dying does.
                socket.setSoLinger(true, 0);
            }
            assertTrue(harness.awaitEngineIdle(Duration.ofSeconds(20)), "KV blocks not freed: " + harness.engine.metrics());
            long generated = harness.engine.metrics().generationTokens() - generatedBefore;
            assertTrue(generated < 480, "the request ran to its end (" + generated + " tokens) instead of being cancelled");
            String metrics = harness.get("/metrics").body();
            assertTrue(metrics.contains("kiln_requests_cancelled_total 1.0"), metrics);
            assertTrue(metrics.contains("kiln_kv_cache_usage_ratio 0.0"), metrics);
            // And the server serves on.
            assertEquals(200, harness.post("/v1/completions", "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\"}")
                    .statusCode());
        }
    }

    @Test
    void aSlowReaderIsCutOffWithoutHoldingUpTheEngine() throws Exception {
        KilnServer.Options options = ServerHarness.serverOptions().withLimits(1 << 20, Duration.ofSeconds(10), 16 * 1024);
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().build())) {
            harness.server.socketSendBufferBytes(8192);
            long generatedBefore = harness.engine.metrics().generationTokens();
            // Four completions with 20 alternatives per token: about 1.5 MB of events, never read.
            String body = "{\"model\": \"llama3-gqa\", \"prompt\": \"Tell me a long story\", \"max_tokens\": 480,"
                    + " \"n\": 4, \"logprobs\": 20, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}";
            try (Socket socket = new Socket()) {
                socket.setReceiveBufferSize(4096);
                socket.connect(new InetSocketAddress("127.0.0.1", harness.server.port()), 10_000);
                byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(bytes);
                out.flush();
                // Meanwhile another client is served at full speed.
                HttpResponse<String> other = harness.post("/v1/completions",
                        "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"max_tokens\": 8}");
                assertEquals(200, other.statusCode(), other.body());
                assertTrue(harness.awaitEngineIdle(Duration.ofSeconds(60)), "the slow reader's request still runs");
            }
            long generated = harness.engine.metrics().generationTokens() - generatedBefore;
            assertTrue(generated < 4 * 480, "the slow reader's request ran to its end (" + generated + " tokens)");
            String metrics = harness.get("/metrics").body();
            assertEquals(1.0, metricValue(metrics, "kiln_requests_cancelled_total"), metrics);
        }
    }

    @Test
    void aDrainCancelsWhatOutlivesTheGracePeriod() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            ExecutorService pool = Executors.newSingleThreadExecutor();
            try {
                Future<SseClient> stream = pool.submit(() -> SseClient.post(harness.http, harness.base
                        + "/v1/completions", LONG_STREAM));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (harness.engine.metrics().numRunning() == 0 && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                // NOTE: 480 tokens of the fixture take tens of milliseconds on a CPU; a grace of 5 ms ends first.
                assertTrue(!harness.server.drain(Duration.ofMillis(5)), "the long request finished within 5 ms");
                assertEquals(KilnServer.State.DRAINING, harness.server.state());
                SseClient cut = stream.get(60, TimeUnit.SECONDS);
                assertTrue(cut.done(), "the stream did not end properly");
                JsonNode last = cut.events().get(cut.events().size() - 1);
                assertEquals("request_cancelled", last.at("/error/code").asText(), last.toString());
                assertTrue(harness.awaitEngineIdle(Duration.ofSeconds(10)), "KV blocks not freed");
                BadInputTest.assertError(harness.post("/v1/completions", "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\"}"),
                        503, null, "draining", "shutting down");
                assertEquals(503, harness.get("/ready").statusCode());
                assertEquals(200, harness.get("/health").statusCode());
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void requestsBeyondMaxWaitingGet429WithRetryAfter() throws Exception {
        KilnServer.Options options = ServerHarness.serverOptions().withMaxWaiting(1);
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().maxRunningSeqs(1).build())) {
            String body = "{\"model\": \"llama3-gqa\", \"prompt\": \"Count to a hundred\", \"max_tokens\": 64,"
                    + " \"temperature\": 0, \"ignore_eos\": true}";
            int clients = 10;
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            List<HttpResponse<String>> responses = new ArrayList<>();
            try {
                List<Future<HttpResponse<String>>> futures = new ArrayList<>();
                for (int i = 0; i < clients; i++) {
                    futures.add(pool.submit(() -> harness.post("/v1/completions", body)));
                }
                for (Future<HttpResponse<String>> f : futures) {
                    responses.add(f.get(120, TimeUnit.SECONDS));
                }
            } finally {
                pool.shutdownNow();
            }
            int ok = 0;
            int rejected = 0;
            for (HttpResponse<String> r : responses) {
                if (r.statusCode() == 429) {
                    rejected++;
                    assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
                    BadInputTest.assertError(r, 429, null, "too_many_requests", "retry");
                } else {
                    assertEquals(200, r.statusCode(), r.body());
                    ok++;
                    JsonNode usage = ServerHarness.json(r.body()).get("usage");
                    assertEquals(64, usage.get("completion_tokens").asInt());
                }
            }
            assertTrue(rejected >= 1, "no request was turned away: " + ok + " answered");
            assertTrue(ok >= 1, "every request was turned away");
            String metrics = harness.get("/metrics").body();
            assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/completions\",status=\"429\"} "
                    + rejected + ".0"), metrics);
            // Once the queue has room again, requests are served.
            assertEquals(200, harness.post("/v1/completions", body).statusCode());
        }
    }

    @Test
    void quietStreamsGetHeartbeatsAndMetricsReportTheWork() throws Exception {
        // NOTE: the waiting stream is quiet for as long as the first request runs after it arrives:
        // 400 tokens take at least ~200 ms on a fast machine, so a 10 ms heartbeat and a 30 ms head
        // start leave a wide margin either way.
        KilnServer.Options options = ServerHarness.serverOptions().withLimits(1 << 20, Duration.ofMillis(10), 1 << 20);
        try (ServerHarness harness = ServerHarness.start(options, ServerHarness.engineOptions().maxRunningSeqs(1).build())) {
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                // The first request holds the only running slot; the second waits, its stream quiet.
                Future<SseClient> first = pool.submit(() -> SseClient.post(harness.http, harness.base + "/v1/completions",
                        LONG_STREAM.replace("480", "400")));
                Thread.sleep(30);
                Future<SseClient> second = pool.submit(() -> SseClient.post(harness.http, harness.base
                        + "/v1/completions", LONG_STREAM.replace("480", "8")));
                SseClient waited = second.get(120, TimeUnit.SECONDS);
                SseClient ran = first.get(120, TimeUnit.SECONDS);
                assertTrue(ran.done() && waited.done());
                assertTrue(waited.comments() >= 1, "no heartbeat while the stream waited");
                assertEquals("length", waited.events().get(waited.events().size() - 1).at("/choices/0/finish_reason")
                        .asText());
            } finally {
                pool.shutdownNow();
            }
            String metrics = harness.get("/metrics").body();
            assertEquals(408.0, metricValue(metrics, "kiln_generation_tokens_total"), metrics);
            assertTrue(metricValue(metrics, "kiln_prompt_tokens_total") > 0, metrics);
            assertEquals(2.0, metricValue(metrics, "kiln_time_to_first_token_seconds_count"), metrics);
            assertEquals(406.0, metricValue(metrics, "kiln_time_per_output_token_seconds_count"), metrics);
            assertEquals(0.0, metricValue(metrics, "kiln_requests_running"), metrics);
            assertEquals(0.0, metricValue(metrics, "kiln_requests_waiting"), metrics);
            assertTrue(metrics.contains("kiln_prefix_cache_hit_rate"), metrics);
            assertTrue(metrics.contains("kiln_time_to_first_token_seconds_bucket{le=\"0.1\"}"), metrics);
        }
    }

    static double metricValue(String exposition, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " (\\S+)$").matcher(exposition);
        if (!m.find()) {
            throw new AssertionError(name + " not in\n" + exposition);
        }
        return Double.parseDouble(m.group(1));
    }
}
