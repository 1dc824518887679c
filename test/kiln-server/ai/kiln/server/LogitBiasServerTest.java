package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * OpenAI's logit_bias over HTTP with the llama3-gqa fixture: on both endpoints a +100 bias makes
 * its token every one generated, and keys that are not token ids, values out of [-100, 100] and
 * ids past the vocabulary are 400s naming logit_bias.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LogitBiasServerTest {

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start();
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    @Test
    void aLargeBiasMakesItsTokenTheChoiceOnBothEndpoints() {
        int x = harness.tokenizer.encode("x", false)[0];
        String bias = "\"logit_bias\": {\"" + x + "\": 100}, \"max_tokens\": 5, \"ignore_eos\": true, \"seed\": 1";
        HttpResponse<String> completion = harness.post("/v1/completions",
                "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", " + bias + "}");
        assertEquals(200, completion.statusCode(), completion.body());
        assertEquals("xxxxx", ServerHarness.json(completion.body()).get("choices").get(0).get("text").asText());
        HttpResponse<String> chat = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", \"messages\":"
                + " [{\"role\": \"user\", \"content\": \"hi\"}], " + bias + "}");
        assertEquals(200, chat.statusCode(), chat.body());
        JsonNode message = ServerHarness.json(chat.body()).get("choices").get(0).get("message");
        assertEquals("xxxxx", message.get("content").asText());
    }

    @Test
    void badBiasesAre400s() {
        String start = "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"logit_bias\": ";
        BadInputTest.assertError(harness.post("/v1/completions", start + "{\"x\": 1}}"), 400, "logit_bias", null,
                "token ids", "'x'");
        BadInputTest.assertError(harness.post("/v1/completions", start + "{\"5\": 101}}"), 400, "logit_bias", null,
                "[-100, 100]", "101");
        BadInputTest.assertError(harness.post("/v1/completions", start + "{\"5\": \"up\"}}"), 400, "logit_bias.5", null,
                "a number");
        BadInputTest.assertError(harness.post("/v1/completions", start + "{\"9999\": 1}}"), 400, "logit_bias", null,
                "'logit_bias' token id 9999", "[0, 512)");
    }
}
