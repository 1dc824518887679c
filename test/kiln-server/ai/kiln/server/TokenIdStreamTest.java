package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A model served without a tokenizer (token-id prompts, as the serving benchmark's random-weight
 * models are) has no text to hold back, so its completion stream still sends a chunk per token,
 * each with empty text: a client sees the tokens arrive, not everything at the end.
 */
class TokenIdStreamTest {

    static final int MAX_TOKENS = 12;

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start(ServerHarness.serverOptions(), ServerHarness.engineOptions().build(), false);
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    @Test
    void everyTokenGetsItsChunk() throws Exception {
        String body = "{\"model\": \"" + ServerHarness.MODEL + "\", \"prompt\": [1, 2, 3, 4], \"max_tokens\": "
                + MAX_TOKENS + ", \"temperature\": 0, \"ignore_eos\": true, \"stream\": true,"
                + " \"stream_options\": {\"include_usage\": true}}";
        SseClient sse = SseClient.post(harness.http, harness.base + "/v1/completions", body);
        assertEquals(200, sse.status(), sse.errorBody());
        assertTrue(sse.done());
        List<JsonNode> events = sse.events();
        int choiceChunks = 0;
        for (JsonNode event : events) {
            if (event.get("choices").size() > 0) {
                choiceChunks++;
                assertEquals("", event.get("choices").get(0).get("text").asText());
            }
        }
        assertEquals(MAX_TOKENS, choiceChunks, "one chunk per generated token");
        JsonNode usage = events.get(events.size() - 1).get("usage");
        assertEquals(MAX_TOKENS, usage.get("completion_tokens").asInt());
    }
}
