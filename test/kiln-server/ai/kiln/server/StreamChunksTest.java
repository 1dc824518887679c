package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Streams send no empty content mid-stream: a token whose text is held back (it ends inside a
 * UTF-8 character, or could start a stop string) sends no chunk of its own; its log-probabilities
 * come with the next chunk that has text, or with the choice's last chunk. The random weights of
 * the llama3-gqa fixture at temperature 1 often sample byte tokens that are parts of characters,
 * and a stop string starting with "e" holds back every text that ends with "e".
 */
class StreamChunksTest {

    static final int SEEDS = 6;
    static final int MAX_TOKENS = 48;
    /** Never matched in full, so generation runs to max_tokens, but "e" at a text's end is held back. */
    static final String STOP = "\"stop\": [\"e\\u0001\\u0002\"]";

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start();
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    static String completion(int seed, boolean stream, boolean logprobs) {
        return "{\"model\": \"llama3-gqa\", \"prompt\": \"The quick brown fox\", \"max_tokens\": " + MAX_TOKENS
                + ", \"temperature\": 1, \"seed\": " + seed + ", " + STOP + ", \"stream\": " + stream
                + (stream ? ", \"stream_options\": {\"include_usage\": true}" : "")
                + (logprobs ? ", \"logprobs\": 1" : "") + "}";
    }

    static String chat(int seed, boolean stream, boolean logprobs) {
        return "{\"model\": \"llama3-gqa\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}],"
                + " \"max_tokens\": " + MAX_TOKENS + ", \"temperature\": 1, \"seed\": " + seed + ", " + STOP
                + ", \"stream\": " + stream + (stream ? ", \"stream_options\": {\"include_usage\": true}" : "")
                + (logprobs ? ", \"logprobs\": true, \"top_logprobs\": 1" : "") + "}";
    }

    static SseClient stream(String path, String body) throws Exception {
        SseClient sse = SseClient.post(harness.http, harness.base + path, body);
        assertEquals(200, sse.status(), sse.errorBody());
        assertTrue(sse.done());
        return sse;
    }

    static JsonNode whole(String path, String body) {
        var response = harness.post(path, body);
        assertEquals(200, response.statusCode(), response.body());
        return ServerHarness.json(response.body());
    }

    static JsonNode usage(List<JsonNode> events) {
        JsonNode last = events.get(events.size() - 1);
        assertEquals(0, last.get("choices").size(), "the usage chunk");
        return last.get("usage");
    }

    @Test
    void completionStreamsHaveNoEmptyTextBeforeTheLastChunk() throws Exception {
        boolean tokensShared = false;
        for (int seed = 0; seed < SEEDS; seed++) {
            for (boolean logprobs : new boolean[] {false, true}) {
                String label = "seed " + seed + (logprobs ? " with logprobs" : "");
                List<JsonNode> events = stream("/v1/completions", completion(seed, true, logprobs)).events();
                StringBuilder text = new StringBuilder();
                int tokens = 0;
                int nextOffset = 0;
                int finished = 0;
                for (JsonNode event : events.subList(0, events.size() - 1)) {
                    JsonNode choice = event.at("/choices/0");
                    assertFalse(finished > 0, label + ": a chunk after the one with finish_reason: " + event);
                    if (choice.get("finish_reason").isNull()) {
                        assertFalse(choice.get("text").asText().isEmpty(), label + ": an empty chunk mid-stream: " + event);
                    } else {
                        finished++;
                    }
                    text.append(choice.get("text").asText());
                    if (logprobs) {
                        JsonNode lp = choice.get("logprobs");
                        int here = lp.get("tokens").size();
                        assertEquals(here, lp.get("token_logprobs").size(), label);
                        assertEquals(here, lp.get("top_logprobs").size(), label);
                        assertEquals(here, lp.get("text_offset").size(), label);
                        for (int t = 0; t < here; t++) {
                            assertEquals(nextOffset, lp.get("text_offset").get(t).asInt(),
                                    label + ": text_offset carries on: " + event);
                            nextOffset += lp.get("tokens").get(t).asText().length();
                        }
                        tokens += here;
                        tokensShared |= here > 1;
                    }
                }
                assertEquals(1, finished, label);
                JsonNode usage = usage(events);
                if (logprobs) {
                    assertEquals(usage.get("completion_tokens").asInt(), tokens, label + ": every token's logprobs sent");
                }
                JsonNode twin = whole("/v1/completions", completion(seed, false, logprobs));
                assertEquals(twin.at("/choices/0/text").asText(), text.toString(), label + ": the streamed text");
                if (logprobs) {
                    assertEquals(twin.at("/choices/0/logprobs/tokens"), tokensOf(events, "/logprobs/tokens"), label);
                }
            }
        }
        assertTrue(tokensShared, "no chunk carried the logprobs of a token whose text was held back");
    }

    @Test
    void chatStreamsHaveNoEmptyContentBeforeTheLastChunk() throws Exception {
        boolean tokensShared = false;
        for (int seed = 0; seed < SEEDS; seed++) {
            for (boolean logprobs : new boolean[] {false, true}) {
                String label = "seed " + seed + (logprobs ? " with logprobs" : "");
                List<JsonNode> events = stream("/v1/chat/completions", chat(seed, true, logprobs)).events();
                JsonNode first = events.get(0).at("/choices/0/delta");
                assertEquals("assistant", first.get("role").asText(), label);
                StringBuilder content = new StringBuilder();
                int tokens = 0;
                int finished = 0;
                for (JsonNode event : events.subList(1, events.size() - 1)) {
                    JsonNode choice = event.at("/choices/0");
                    assertFalse(finished > 0, label + ": a chunk after the one with finish_reason: " + event);
                    if (choice.get("finish_reason").isNull()) {
                        assertFalse(choice.at("/delta/content").asText().isEmpty(),
                                label + ": an empty content chunk mid-stream: " + event);
                    } else {
                        finished++;
                        assertFalse(choice.get("delta").has("content") && choice.at("/delta/content").asText().isEmpty(),
                                label + ": " + event);
                    }
                    content.append(choice.at("/delta/content").asText());
                    if (logprobs && !choice.get("logprobs").isNull()) {
                        int here = choice.at("/logprobs/content").size();
                        tokens += here;
                        tokensShared |= here > 1;
                    }
                }
                assertEquals(1, finished, label);
                JsonNode usage = usage(events);
                if (logprobs) {
                    assertEquals(usage.get("completion_tokens").asInt(), tokens, label + ": every token's logprobs sent");
                }
                JsonNode twin = whole("/v1/chat/completions", chat(seed, false, logprobs));
                assertEquals(twin.at("/choices/0/message/content").asText(), content.toString(), label);
                if (logprobs) {
                    assertEquals(twin.at("/choices/0/logprobs/content"), tokensOf(events, "/logprobs/content"), label);
                }
            }
        }
        assertTrue(tokensShared, "no chunk carried the logprobs of a token whose text was held back");
    }

    /** The array at {@code pointer} of every chunk's first choice, joined in order. */
    static JsonNode tokensOf(List<JsonNode> events, String pointer) {
        var all = ServerHarness.JSON.createArrayNode();
        for (JsonNode event : events) {
            JsonNode choice = event.at("/choices/0");
            if (!choice.isMissingNode()) {
                for (JsonNode t : choice.at(pointer)) {
                    all.add(t);
                }
            }
        }
        return all;
    }
}
