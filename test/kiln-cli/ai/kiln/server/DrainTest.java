package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code kiln serve} as its own process: SIGTERM turns /ready and new requests to 503 while the
 * request in flight finishes, then the process exits 0.
 */
class DrainTest {

    @Test
    void sigtermDrainsInFlightRequestsThenExitsZero() throws Exception {
        try (ServeProcess server = ServeProcess.start("--grace-period-seconds", "60")) {
            Process process = server.process;
            String base = server.base();
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
            awaitStatus(http, base + "/ready", 200, Duration.ofSeconds(60));

            // A long request in flight: two completions of 480 tokens each.
            String body = "{\"model\": \"llama3-gqa\", \"prompt\": \"Tell me a long story\", \"max_tokens\": 480,"
                    + " \"n\": 2, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}";
            CompletableFuture<SseClient> inFlight = CompletableFuture.supplyAsync(() -> {
                try {
                    return SseClient.post(http, base + "/v1/completions", body);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            awaitMetric(http, base, "kiln_requests_running 2.0", Duration.ofSeconds(60));

            // SIGTERM. NOTE: Process.destroy() would also close our end of the child's output pipe.
            assertTrue(process.toHandle().destroy());
            awaitStatus(http, base + "/ready", 503, Duration.ofSeconds(10));
            HttpResponse<String> refused = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"llama3-gqa\", \"prompt\": \"hi\"}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(503, refused.statusCode(), refused.body());
            assertEquals("draining", ServerHarness.json(refused.body()).at("/error/code").asText());
            assertTrue(!inFlight.isDone(), "the in-flight request ended before the drain was observed");

            SseClient stream = inFlight.get(120, TimeUnit.SECONDS);
            assertEquals(200, stream.status());
            assertTrue(stream.done(), "the in-flight stream was cut");
            List<String> finishes = new ArrayList<>();
            for (JsonNode event : stream.events()) {
                JsonNode choice = event.at("/choices/0");
                if (!choice.path("finish_reason").isNull()) {
                    finishes.add(choice.get("finish_reason").asText());
                }
            }
            assertEquals(List.of("length", "length"), finishes);
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the process did not exit after draining");
            assertEquals(0, process.exitValue(), String.join("\n", server.lines()));
            server.awaitOutputEnd();
            List<String> log = server.lines();
            assertTrue(log.stream().anyMatch(l -> l.contains("draining: 1 requests in flight")), log.toString());
            assertTrue(log.stream().anyMatch(l -> l.contains("POST /v1/completions 200")), log.toString());
        }
    }

    static void awaitStatus(HttpClient http, String url, int status, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        int last = -1;
        while (System.nanoTime() < deadline) {
            try {
                last = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode();
                if (last == status) {
                    return;
                }
            } catch (java.io.IOException e) {
                last = -1;
            }
            Thread.sleep(20);
        }
        throw new AssertionError(url + " never answered " + status + " (last: " + last + ")");
    }

    static void awaitMetric(HttpClient http, String base, String line, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            String metrics = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            if (metrics.contains(line)) {
                return;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the metrics never showed '" + line + "'");
    }
}
