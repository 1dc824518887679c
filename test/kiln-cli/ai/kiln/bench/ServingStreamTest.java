package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The client side of {@code kiln bench serve} against a scripted server whose answer depends on
 * max_tokens: each way a stream can go wrong is one failed request with its reason; good streams
 * are counted by their usage (or, without one, by their chunks). Chat streams are timed on the
 * chunks that carry content only.
 */
class ServingStreamTest {

    static final ObjectMapper JSON = new ObjectMapper();

    HttpServer server;
    ExecutorService pool;
    final List<JsonNode> bodies = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        pool = Executors.newCachedThreadPool();
        server.setExecutor(pool);
        server.createContext("/v1/completions", this::answer);
        server.createContext("/v1/chat/completions", this::answerChat);
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
        pool.shutdownNow();
    }

    private void answer(HttpExchange exchange) throws IOException {
        JsonNode body = JSON.readTree(exchange.getRequestBody());
        synchronized (bodies) {
            bodies.add(body);
        }
        int maxTokens = body.get("max_tokens").asInt();
        if (maxTokens == 3) {
            byte[] text = "plain text oops".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(500, text.length);
            exchange.getResponseBody().write(text);
            exchange.close();
            return;
        }
        exchange.getResponseHeaders().add("Content-Type", "text/event-stream");
        exchange.sendResponseHeaders(200, 0);
        OutputStream out = exchange.getResponseBody();
        try {
            send(out, ": keep-alive\n\n");
            int chunks = maxTokens == 1 || maxTokens == 2 ? 1 : maxTokens;
            for (int i = 0; i < chunks; i++) {
                send(out, "data: {\"object\": \"text_completion\", \"choices\": [{\"index\": 0, \"text\": \"t" + i
                        + "\", \"finish_reason\": null}], \"usage\": null}\n\n");
            }
            switch (maxTokens) {
                case 1 -> send(out, "data: {\"error\": {\"message\": \"boom\", \"type\": \"server_error\"}}\n\n");
                case 2 -> {
                    out.close(); // no [DONE]
                    return;
                }
                case 4 -> send(out, "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 4,"
                        + " \"total_tokens\": 9}}\n\n");
                case 6 -> sleep(3000);
                default -> {
                }
            }
            send(out, "data: [DONE]\n\n");
        } catch (IOException gone) {
            // The client gave up (the timeout case).
        } finally {
            exchange.close();
        }
    }

    /** Milliseconds between a chat stream's role chunk and its first content. */
    static final int CHAT_THINKING_MILLIS = 300;

    /**
     * A chat stream as OpenAI's servers send one: a role chunk at once, then max_tokens content
     * chunks (an empty one among them), a chunk with the finish reason, and usage where max_tokens is 3.
     */
    private void answerChat(HttpExchange exchange) throws IOException {
        JsonNode body = JSON.readTree(exchange.getRequestBody());
        synchronized (bodies) {
            bodies.add(body);
        }
        int maxTokens = body.get("max_completion_tokens").asInt();
        exchange.getResponseHeaders().add("Content-Type", "text/event-stream");
        exchange.sendResponseHeaders(200, 0);
        try (OutputStream out = exchange.getResponseBody()) {
            String open = "data: {\"object\": \"chat.completion.chunk\", \"choices\": [{\"index\": 0, \"delta\": ";
            send(out, open + "{\"role\": \"assistant\", \"content\": \"\"}, \"finish_reason\": null}]}\n\n");
            sleep(CHAT_THINKING_MILLIS);
            for (int i = 0; i < maxTokens; i++) {
                send(out, open + "{\"content\": \"w" + i + " \"}, \"finish_reason\": null}]}\n\n");
                if (i == 0) {
                    send(out, open + "{\"content\": \"\"}, \"finish_reason\": null}]}\n\n");
                }
            }
            send(out, open + "{}, \"finish_reason\": \"length\"}]}\n\n");
            if (maxTokens == 3) {
                send(out, "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 3,"
                        + " \"total_tokens\": 12}}\n\n");
            }
            send(out, "data: [DONE]\n\n");
        } finally {
            exchange.close();
        }
    }

    private static void send(OutputStream out, String text) throws IOException {
        out.write(text.getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void eachWayOfFailingIsCountedWithItsReason() {
        ServingBenchmark bench = new ServingBenchmark(new ServingBenchmark.Config(
                URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/"), ServingEndpoint.COMPLETIONS, "m",
                "secret",
                Double.POSITIVE_INFINITY, 1.0, null, 0, Duration.ofMillis(700), 0,
                new SamplingOptions(0.8, 0.95, 40, null, 100L), null));
        List<BenchPrompt> prompts = new ArrayList<>();
        for (int outputLen = 1; outputLen <= 6; outputLen++) {
            prompts.add(BenchPrompt.ofTokens(new int[] {1, 2, 3, 4, 5}, outputLen));
        }
        ServingReport report = bench.run(prompts, null);
        assertEquals(2, report.completed(), report.errors().toString());
        assertEquals(4, report.failed());
        // max_tokens 4: the usage's count; max_tokens 5: no usage, so the chunks.
        assertEquals(4 + 5, report.totalOutputTokens());
        assertEquals(10, report.totalInputTokens());
        assertEquals(3 + 4, report.itl().count(), "gaps between chunks");
        List<String> messages = report.errors().stream().map(ServingReport.ErrorKind::message).toList();
        assertTrue(messages.contains("error event: boom"), messages.toString());
        assertTrue(messages.contains("the stream ended before data: [DONE] (1 chunks)"), messages.toString());
        assertTrue(messages.contains("HTTP 500: plain text oops"), messages.toString());
        assertTrue(messages.contains("timed out after 0.7 s"), messages.toString());

        assertEquals(6, bodies.size());
        JsonNode body = bodies.stream().filter(b -> b.get("max_tokens").asInt() == 4).findFirst().orElseThrow();
        assertEquals("m", body.get("model").asText());
        assertEquals(5, body.get("prompt").size());
        assertTrue(body.get("stream").asBoolean());
        assertTrue(body.get("ignore_eos").asBoolean());
        assertTrue(body.at("/stream_options/include_usage").asBoolean());
        assertEquals(0.8, body.get("temperature").asDouble());
        assertEquals(0.95, body.get("top_p").asDouble());
        assertEquals(40, body.get("top_k").asInt());
        assertTrue(!body.has("min_p"), "not given, not sent");
        assertEquals(103, body.get("seed").asLong(), "request 3 gets seed 100 + 3");
    }

    @Test
    void chatStreamsAreTimedOnTheChunksThatCarryContent() {
        ServingBenchmark bench = new ServingBenchmark(new ServingBenchmark.Config(
                URI.create("http://127.0.0.1:" + server.getAddress().getPort()), ServingEndpoint.CHAT_COMPLETIONS, "m",
                null, Double.POSITIVE_INFINITY, 1.0, null, 0, Duration.ofSeconds(10), 0, SamplingOptions.greedy(), null));
        List<BenchPrompt> prompts = List.of(BenchPrompt.ofText("Tell me a story.", 6, 3),
                BenchPrompt.ofText("Tell me another.", 5, 4));
        ServingReport report = bench.run(prompts, null);
        assertEquals(2, report.completed(), report.errors().toString());
        // max_tokens 3: the usage's count; 4: no usage, so the chunks with content.
        assertEquals(3 + 4, report.totalOutputTokens());
        assertEquals(2 + 3, report.itl().count(), "gaps between content chunks only: not the role, empty or last chunk");
        assertTrue(report.ttft().count() == 2 && report.ttft().mean() >= CHAT_THINKING_MILLIS,
                "the role chunk, sent at once, is not the first token: " + report.ttft());
        assertEquals(11, report.totalInputTokens());

        JsonNode body = bodies.stream().filter(b -> b.get("max_tokens").asInt() == 3).findFirst().orElseThrow();
        assertEquals("m", body.get("model").asText());
        assertEquals(1, body.get("messages").size());
        assertEquals("user", body.at("/messages/0/role").asText());
        assertEquals("Tell me a story.", body.at("/messages/0/content").asText());
        assertEquals(3, body.get("max_completion_tokens").asInt());
        assertTrue(!body.has("prompt"), body.toString());
        assertTrue(body.get("stream").asBoolean());
        assertTrue(body.get("ignore_eos").asBoolean());
        assertTrue(body.at("/stream_options/include_usage").asBoolean());
        assertEquals(0.0, body.get("temperature").asDouble());
    }

    @Test
    void endpointsByTheirPaths() {
        assertEquals(ServingEndpoint.CHAT_COMPLETIONS, ServingEndpoint.fromFlag("/v1/chat/completions"));
        assertEquals(ServingEndpoint.COMPLETIONS, ServingEndpoint.fromFlag("/v1/completions"));
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> ServingEndpoint.fromFlag("/v1/embeddings"));
        assertTrue(unknown.getMessage().contains("/v1/embeddings"), unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ServingEndpoint.CHAT_COMPLETIONS.putPrompt(
                JSON.createObjectNode(), BenchPrompt.ofTokens(new int[] {1, 2}, 4)), "chat takes no token ids");
    }
}
