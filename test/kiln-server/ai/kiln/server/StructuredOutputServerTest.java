package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.SchemaValidation;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Structured output over HTTP with the llama3-gqa fixture (random weights: the grammar alone makes
 * the output valid): response_format json_schema and json_object on /v1/chat/completions, vLLM's
 * guided_choice, guided_regex, guided_json and structured_outputs on /v1/completions, streamed and
 * not; finish_reason "length" for an output max_tokens cuts short; and the 400s of bad schemas,
 * patterns and combinations, naming the field and the problem.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StructuredOutputServerTest {

    static final String SCHEMA = "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"maxLength\": 8},"
            + " \"temp\": {\"type\": \"number\"}, \"sunny\": {\"type\": \"boolean\"}}, \"required\": [\"city\", \"temp\","
            + " \"sunny\"], \"additionalProperties\": false}";
    static final String MESSAGES = "\"messages\": [{\"role\": \"user\", \"content\": \"Weather?\"}]";

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start();
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    static String jsonSchemaFormat(String schema) {
        return "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"weather\", \"strict\": true,"
                + " \"schema\": " + schema + "}}";
    }

    @Test
    void chatWithAJsonSchemaAnswersValidJson() {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + MESSAGES
                + ", \"n\": 4, \"seed\": 3, \"max_tokens\": 120, " + jsonSchemaFormat(SCHEMA) + "}");
        assertEquals(200, r.statusCode(), r.body());
        int stopped = 0;
        for (JsonNode choice : ServerHarness.json(r.body()).get("choices")) {
            String content = choice.get("message").get("content").asText();
            if (choice.get("finish_reason").asText().equals("stop")) {
                stopped++;
                assertEquals(List.of(), SchemaValidation.problems(SCHEMA, content), content);
            } else {
                assertEquals("length", choice.get("finish_reason").asText());
            }
        }
        assertTrue(stopped >= 2, "most of the 4 complete within 120 tokens: " + stopped);
    }

    @Test
    void streamedChatWithJsonObjectAnswersAnObject() throws Exception {
        SseClient sse = SseClient.post(harness.http, harness.base + "/v1/chat/completions", "{\"model\": \"llama3-gqa\", "
                + MESSAGES + ", \"stream\": true, \"seed\": 11, \"temperature\": 0, \"max_tokens\": 60,"
                + " \"response_format\": {\"type\": \"json_object\"}}");
        assertEquals(200, sse.status(), sse.errorBody());
        assertTrue(sse.done());
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (JsonNode event : sse.events()) {
            JsonNode choice = event.get("choices").get(0);
            JsonNode content = choice.get("delta").get("content");
            if (content != null) {
                text.append(content.asText());
            }
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        assertTrue(text.toString().startsWith("{"), text.toString());
        if ("stop".equals(finish)) {
            assertTrue(ServerHarness.json(text.toString()).isObject(), text.toString());
        } else {
            assertEquals("length", finish);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("completionConstraints")
    void completionsFollowTheVllmFields(String field, String value, String expectedPattern) throws Exception {
        String body = "{\"model\": \"llama3-gqa\", \"prompt\": \"Answer:\", \"n\": 3, \"seed\": 5, \"max_tokens\": 40, \""
                + field + "\": " + value;
        HttpResponse<String> r = harness.post("/v1/completions", body + "}");
        assertEquals(200, r.statusCode(), r.body());
        for (JsonNode choice : ServerHarness.json(r.body()).get("choices")) {
            assertEquals("stop", choice.get("finish_reason").asText(), choice.toString());
            assertTrue(choice.get("text").asText().matches(expectedPattern), choice.toString());
        }
        SseClient sse = SseClient.post(harness.http, harness.base + "/v1/completions", body + ", \"stream\": true}");
        assertEquals(200, sse.status(), sse.errorBody());
        StringBuilder[] texts = {new StringBuilder(), new StringBuilder(), new StringBuilder()};
        int finished = 0;
        for (JsonNode event : sse.events()) {
            JsonNode choice = event.get("choices").get(0);
            texts[choice.get("index").asInt()].append(choice.get("text").asText());
            if (!choice.get("finish_reason").isNull()) {
                assertEquals("stop", choice.get("finish_reason").asText());
                finished++;
            }
        }
        assertEquals(3, finished);
        for (StringBuilder t : texts) {
            assertTrue(t.toString().matches(expectedPattern), t.toString());
        }
    }

    static List<Arguments> completionConstraints() {
        return List.of(
                Arguments.of("guided_choice", "[\"sunny\", \"rainy\", \"cloudy skies\"]", "sunny|rainy|cloudy skies"),
                Arguments.of("guided_regex", "\"[0-9]{3}-[a-z]{2}\"", "[0-9]{3}-[a-z]{2}"),
                Arguments.of("guided_json", "{\"enum\": [\"a\", 1, null]}", "\"a\"|1|null"),
                Arguments.of("structured_outputs", "{\"choice\": [\"yes\", \"no\"]}", "yes|no"),
                Arguments.of("structured_outputs", "{\"json\": \"{\\\"type\\\": \\\"boolean\\\"}\"}", "true|false"),
                Arguments.of("response_format", "{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"b\","
                        + " \"schema\": {\"type\": \"array\", \"items\": {\"type\": \"integer\", \"enum\": [7]},"
                        + " \"minItems\": 1, \"maxItems\": 2}}}", "\\[7(, ?7)?\\]"));
    }

    @Test
    void anOutputCutShortEndsWithLength() {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + MESSAGES
                + ", \"max_tokens\": 2, \"temperature\": 0, " + jsonSchemaFormat(SCHEMA) + "}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode choice = ServerHarness.json(r.body()).get("choices").get(0);
        assertEquals("length", choice.get("finish_reason").asText());
        assertTrue(choice.get("message").get("content").asText().startsWith("{"), choice.toString());
    }

    @ParameterizedTest(name = "[{index}] {1}")
    @MethodSource("badConstraints")
    void badConstraintsAre400sNamingTheProblem(String path, String fields, String param, String[] words) {
        String prompt = path.equals("/v1/completions") ? "\"prompt\": \"hi\"" : MESSAGES;
        HttpResponse<String> r = harness.post(path, "{\"model\": \"llama3-gqa\", " + prompt + ", " + fields + "}");
        BadInputTest.assertError(r, 400, param, null, words);
    }

    static List<Arguments> badConstraints() {
        String chat = "/v1/chat/completions";
        String completions = "/v1/completions";
        return List.of(
                Arguments.of(chat, jsonSchemaFormat("{\"type\": \"object\", \"properties\": {\"d\": {\"type\": \"string\","
                        + " \"format\": \"ipv6\"}}}"), "response_format",
                        new String[] {"'response_format' is invalid", "#/properties/d/format", "'ipv6' is not supported"}),
                Arguments.of(chat, jsonSchemaFormat("{\"$ref\": \"#/$defs/none\"}"), "response_format",
                        new String[] {"'#/$defs/none' names nothing"}),
                Arguments.of(chat, "\"response_format\": {\"type\": \"json_schema\"}", "response_format.json_schema",
                        new String[] {"required"}),
                Arguments.of(chat, "\"response_format\": {\"type\": \"yaml\"}", "response_format.type",
                        new String[] {"'yaml'"}),
                Arguments.of(completions, "\"guided_regex\": \"(a|b\"", "guided_regex",
                        new String[] {"unclosed '('", "offset 4"}),
                Arguments.of(completions, "\"guided_choice\": []", "guided_choice", new String[] {"non-empty"}),
                Arguments.of(completions, "\"guided_json\": \"{not json\"", "guided_json", new String[] {"not valid JSON"}),
                Arguments.of(completions, "\"guided_grammar\": \"root ::= 'a'\"", "guided_grammar",
                        new String[] {"not supported"}),
                Arguments.of(completions, "\"guided_regex\": \"a\", \"guided_choice\": [\"b\"]", "guided_choice",
                        new String[] {"Only one", "guided_regex", "guided_choice"}),
                Arguments.of(completions, "\"structured_outputs\": {\"grammar\": \"x\"}", "structured_outputs.grammar",
                        new String[] {"not supported"}),
                Arguments.of(completions, "\"structured_outputs\": {\"jsn\": {}}", "structured_outputs.jsn",
                        new String[] {"not a structured-output option"}));
    }
}
