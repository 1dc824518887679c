package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Clients stream at once (completions and chat, token log-probabilities on so that every token
 * shows): every stream is complete, and each one's tokens and text equal its non-streamed result,
 * none lost or duplicated: 64 greedy clients, and 256 sampled ones, each with its own seed (its
 * twin the same request, not streamed, run alone).
 */
class ConcurrentStreamsTest {

    static final int CLIENTS = 64;
    static final int MAX_TOKENS = 12;

    static String body(int i, boolean stream) {
        return body(i, stream, "\"temperature\": 0");
    }

    /** Client i's request at temperature 0.9 / top_p 0.95 with seed 1000 + i. */
    static String sampledBody(int i, boolean stream) {
        return body(i, stream, "\"temperature\": 0.9, \"top_p\": 0.95, \"seed\": " + (1000 + i));
    }

    static String body(int i, boolean stream, String sampling) {
        String common = "\"model\": \"llama3-gqa\", \"max_tokens\": " + MAX_TOKENS + ", " + sampling + ", \"stream\": "
                + stream + (stream ? ", \"stream_options\": {\"include_usage\": true}" : "");
        if (i % 2 == 0) {
            return "{" + common + ", \"prompt\": \"Client " + i + " says the quick brown fox\", \"logprobs\": 0}";
        }
        return "{" + common + ", \"messages\": [{\"role\": \"user\", \"content\": \"Client " + i + " says hello\"}],"
                + " \"logprobs\": true}";
    }

    static String path(int i) {
        return i % 2 == 0 ? "/v1/completions" : "/v1/chat/completions";
    }

    /** The tokens of a non-streamed response's first choice, from its log-probabilities. */
    static List<String> tokens(JsonNode choice, boolean chat) {
        List<String> out = new ArrayList<>();
        if (chat) {
            for (JsonNode t : choice.at("/logprobs/content")) {
                out.add(t.get("token").asText());
            }
        } else {
            for (JsonNode t : choice.at("/logprobs/tokens")) {
                out.add(t.asText());
            }
        }
        return out;
    }

    @Test
    void sixtyFourConcurrentStreamsEqualTheirNonStreamedResults() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            streamsEqualTheirTwins(harness, CLIENTS, ConcurrentStreamsTest::body);
        }
    }

    @Test
    void twoHundredFiftySixSeededSampledStreamsEqualTheirNonStreamedTwins() throws Exception {
        try (ServerHarness harness = ServerHarness.start(ServerHarness.serverOptions(),
                ServerHarness.engineOptions().maxRunningSeqs(256).build())) {
            streamsEqualTheirTwins(harness, 256, ConcurrentStreamsTest::sampledBody);
        }
    }

    interface Body {
        String of(int client, boolean stream);
    }

    static void streamsEqualTheirTwins(ServerHarness harness, int clients, Body body) throws Exception {
        // The references, one at a time.
        List<JsonNode> expected = new ArrayList<>();
        for (int i = 0; i < clients; i++) {
            var r = harness.post(path(i), body.of(i, false));
            assertEquals(200, r.statusCode(), r.body());
            expected.add(ServerHarness.json(r.body()));
        }
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        try {
            List<Future<SseClient>> streams = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                int client = i;
                streams.add(pool.submit(() -> SseClient.post(harness.http, harness.base + path(client),
                        body.of(client, true))));
            }
            for (int i = 0; i < clients; i++) {
                check(i, streams.get(i).get(120, TimeUnit.SECONDS), expected.get(i));
            }
        } finally {
            pool.shutdownNow();
        }
        assertTrue(harness.awaitEngineIdle(java.time.Duration.ofSeconds(10)), "KV blocks still held");
    }

    static void check(int i, SseClient stream, JsonNode expected) {
        boolean chat = i % 2 == 1;
        String where = "client " + i;
        assertEquals(200, stream.status(), where + " " + stream.errorBody());
        assertTrue(stream.done(), where + ": no [DONE]");
        JsonNode expectedChoice = expected.at("/choices/0");
        StringBuilder text = new StringBuilder();
        List<String> tokens = new ArrayList<>();
        String finish = null;
        JsonNode usage = null;
        for (int e = 0; e < stream.events().size(); e++) {
            JsonNode event = stream.events().get(e);
            assertEquals(expected.get("model").asText(), event.get("model").asText());
            assertEquals(chat ? "chat.completion.chunk" : "text_completion", event.get("object").asText());
            if (event.get("choices").isEmpty()) {
                assertEquals(stream.events().size() - 1, e, where + ": the usage chunk comes last");
                usage = event.get("usage");
                continue;
            }
            assertTrue(event.get("usage").isNull(), where);
            JsonNode choice = event.at("/choices/0");
            assertEquals(0, choice.get("index").asInt());
            assertTrue(finish == null, where + ": an event after the finish reason");
            if (chat) {
                JsonNode delta = choice.get("delta");
                if (e == 0) {
                    assertEquals("assistant", delta.get("role").asText(), where);
                } else {
                    assertTrue(!delta.has("role"), where);
                }
                text.append(delta.path("content").asText(""));
                for (JsonNode t : choice.at("/logprobs/content")) {
                    tokens.add(t.get("token").asText());
                }
            } else {
                text.append(choice.get("text").asText());
                for (JsonNode t : choice.at("/logprobs/tokens")) {
                    tokens.add(t.asText());
                }
            }
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        String expectedText = chat ? expectedChoice.at("/message/content").asText() : expectedChoice.get("text").asText();
        assertEquals(expectedText, text.toString(), where);
        assertEquals(tokens(expectedChoice, chat), tokens, where);
        assertEquals(expectedChoice.get("finish_reason").asText(), finish, where);
        assertEquals(expected.get("usage"), usage, where);
        assertEquals(usage.get("completion_tokens").asInt(), tokens.size(), where);
    }
}
