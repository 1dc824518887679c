package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.util.Collections;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A request that no amount of waiting lets in gets a 400 naming the limit and both numbers, not a
 * 429 that a client would retry forever; what can fit is served.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AdmissionLimitTest {

    static final int MAX_WAITING = 4;
    static final int MAX_RUNNING_SEQS = 2;

    ServerHarness harness;

    @BeforeAll
    void start() {
        harness = ServerHarness.start(ServerHarness.serverOptions().withMaxWaiting(MAX_WAITING),
                ServerHarness.engineOptions().maxRunningSeqs(MAX_RUNNING_SEQS).build());
    }

    @AfterAll
    void stop() throws Exception {
        harness.close();
    }

    static String completion(int prompts, int n) {
        String list = String.join(", ", Collections.nCopies(prompts, "\"Hello\""));
        return "{\"model\": \"llama3-gqa\", \"prompt\": [" + list + "], \"n\": " + n
                + ", \"max_tokens\": 3, \"temperature\": 0}";
    }

    @Test
    void morePromptsThanMaxWaitingIs400NamingTheLimit() {
        for (int attempt = 0; attempt < 3; attempt++) {
            HttpResponse<String> r = harness.post("/v1/completions", completion(MAX_WAITING + 1, 1));
            JsonNode error = BadInputTest.assertError(r, 400, "prompt", "too_many_prompts", "--max-waiting",
                    "5 prompts", "4");
            assertTrue(r.headers().firstValue("Retry-After").isEmpty(), "nothing to retry: " + r.headers());
            assertEquals("invalid_request_error", error.get("type").asText());
        }
        HttpResponse<String> tokenIds = harness.post("/v1/completions",
                "{\"model\": \"llama3-gqa\", \"prompt\": [[1], [2], [3], [4], [5], [6]], \"max_tokens\": 3}");
        BadInputTest.assertError(tokenIds, 400, "prompt", "too_many_prompts", "6 prompts", "4");
    }

    @Test
    void asManyPromptsAsMaxWaitingAreServed() {
        HttpResponse<String> r = harness.post("/v1/completions", completion(MAX_WAITING, 1));
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(MAX_WAITING, ServerHarness.json(r.body()).get("choices").size());
    }

    /**
     * The sequences of {@code n} x prompts are scheduled one by one, so more of them than
     * --max-num-seqs run in turns; only prompts count against --max-waiting.
     */
    @Test
    void moreSequencesThanTheRunningCapRunInTurns() {
        HttpResponse<String> r = harness.post("/v1/completions", completion(MAX_WAITING, 3));
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(MAX_WAITING * 3, ServerHarness.json(r.body()).get("choices").size());
        HttpResponse<String> chat = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", \"messages\":"
                + " [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 5, \"max_tokens\": 3}");
        assertEquals(200, chat.statusCode(), chat.body());
        assertEquals(5, ServerHarness.json(chat.body()).get("choices").size());
    }

    @Test
    void maxWaitingOfZeroIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ServerHarness.serverOptions().withMaxWaiting(0));
        assertTrue(e.getMessage().contains("max-waiting"), e.getMessage());
    }
}
