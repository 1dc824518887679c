package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.SchemaValidation;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.util.ArrayList;
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
 * Tool calls over /v1/chat/completions with the llama3-gqa fixture served with the hermes format.
 * Its weights are random, so its free text is noise: tool_choice "required" and a named function,
 * whose grammar makes the output one well-formed call, give the answers' shape (tool_calls with a
 * call_ id, the function's name, arguments valid under its schema, finish_reason "tool_calls"),
 * streamed (id and name first, then the arguments, no content) and not; a conversation holding
 * earlier calls and tool results is rendered and answered; bad tool definitions and choices are
 * 400s naming the field.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ToolCallServerTest {

    static final String WEATHER_PARAMETERS = "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\","
            + " \"maxLength\": 8}, \"unit\": {\"enum\": [\"c\", \"f\"]}}, \"required\": [\"city\", \"unit\"],"
            + " \"additionalProperties\": false}";
    static final String TIME_PARAMETERS = "{\"type\": \"object\", \"properties\": {\"zone\": {\"enum\": [\"UTC\", \"CET\"]}},"
            + " \"required\": [\"zone\"], \"additionalProperties\": false}";
    static final String TOOLS = "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
            + " \"description\": \"Current weather\", \"parameters\": " + WEATHER_PARAMETERS + "}},"
            + " {\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": " + TIME_PARAMETERS + "}}]";
    static final String MESSAGES = "\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}]";

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start(ServerHarness.serverOptions().withToolCallParser("hermes"),
                ServerHarness.engineOptions().build());
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    static String parametersOf(String name) {
        return name.equals("get_weather") ? WEATHER_PARAMETERS : TIME_PARAMETERS;
    }

    @Test
    void aNamedFunctionIsCalledWithArgumentsItsSchemaAccepts() {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + MESSAGES + ", "
                + TOOLS + ", \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}},"
                + " \"n\": 3, \"seed\": 7, \"max_tokens\": 120}");
        assertEquals(200, r.statusCode(), r.body());
        for (JsonNode choice : ServerHarness.json(r.body()).get("choices")) {
            assertEquals("tool_calls", choice.get("finish_reason").asText(), choice.toString());
            JsonNode message = choice.get("message");
            assertTrue(message.get("content").isNull(), message.toString());
            assertEquals(1, message.get("tool_calls").size(), message.toString());
            JsonNode call = message.get("tool_calls").get(0);
            assertTrue(call.get("id").asText().matches("call_[0-9a-f]{24}"), call.toString());
            assertEquals("function", call.get("type").asText());
            assertEquals("get_weather", call.get("function").get("name").asText());
            String arguments = call.get("function").get("arguments").asText();
            assertEquals(List.of(), SchemaValidation.problems(WEATHER_PARAMETERS, arguments), arguments);
        }
    }

    @Test
    void requiredStreamsTheCallAsToolCallDeltas() throws Exception {
        SseClient sse = SseClient.post(harness.http, harness.base + "/v1/chat/completions", "{\"model\": \"llama3-gqa\", "
                + MESSAGES + ", " + TOOLS + ", \"tool_choice\": \"required\", \"stream\": true, \"seed\": 5,"
                + " \"max_tokens\": 120}");
        assertEquals(200, sse.status(), sse.errorBody());
        assertTrue(sse.done());
        List<JsonNode> deltas = new ArrayList<>();
        String finish = null;
        StringBuilder content = new StringBuilder();
        for (JsonNode event : sse.events()) {
            JsonNode choice = event.get("choices").get(0);
            JsonNode delta = choice.get("delta");
            if (delta.has("content")) {
                content.append(delta.get("content").asText());
            }
            if (delta.has("tool_calls")) {
                deltas.add(delta.get("tool_calls").get(0));
            }
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        assertEquals("tool_calls", finish);
        assertEquals("", content.toString(), "a forced call is no content");
        assertTrue(deltas.size() >= 3, "the head, then the arguments in fragments as they are written: " + deltas);
        JsonNode head = deltas.get(0);
        assertEquals(0, head.get("index").asInt());
        assertTrue(head.get("id").asText().startsWith("call_"), head.toString());
        assertEquals("function", head.get("type").asText());
        String name = head.get("function").get("name").asText();
        assertTrue(name.equals("get_weather") || name.equals("get_time"), name);
        StringBuilder arguments = new StringBuilder();
        for (JsonNode d : deltas.subList(1, deltas.size())) {
            assertEquals(0, d.get("index").asInt());
            assertFalse(d.has("id"), "the id comes once: " + d);
            arguments.append(d.get("function").get("arguments").asText());
        }
        assertEquals(List.of(), SchemaValidation.problems(parametersOf(name), arguments.toString()), arguments.toString());
    }

    @Test
    void autoStreamsTheSameAnswerItGivesWhole() throws Exception {
        // Greedy, so both runs write the same tokens; the noise of random weights is content, and
        // whatever the stream held back as a possible call must come out all the same.
        String body = "{\"model\": \"llama3-gqa\", " + MESSAGES + ", " + TOOLS + ", \"tool_choice\": \"auto\","
                + " \"temperature\": 0, \"max_tokens\": 40";
        HttpResponse<String> r = harness.post("/v1/chat/completions", body + "}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode whole = ServerHarness.json(r.body()).get("choices").get(0);
        SseClient sse = SseClient.post(harness.http, harness.base + "/v1/chat/completions", body + ", \"stream\": true}");
        assertEquals(200, sse.status(), sse.errorBody());
        StringBuilder content = new StringBuilder();
        int calls = 0;
        String finish = null;
        for (JsonNode event : sse.events()) {
            JsonNode choice = event.get("choices").get(0);
            JsonNode delta = choice.get("delta");
            if (delta.has("content")) {
                content.append(delta.get("content").asText());
            }
            if (delta.has("tool_calls") && delta.get("tool_calls").get(0).has("id")) {
                calls++;
            }
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        JsonNode message = whole.get("message");
        assertEquals(message.get("content").isNull() ? "" : message.get("content").asText(), content.toString());
        assertEquals(message.has("tool_calls") ? message.get("tool_calls").size() : 0, calls);
        assertEquals(whole.get("finish_reason").asText(), finish);
    }

    @Test
    void aConversationWithEarlierCallsAndToolResultsIsAnswered() {
        String messages = "\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"},"
                + " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\","
                + " \"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\", \\\"unit\\\": \\\"c\\\"}\"}}]},"
                + " {\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"18 C, sunny\"}]";
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + messages + ", "
                + TOOLS + ", \"tool_choice\": \"none\", \"max_tokens\": 8, \"seed\": 1}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode choice = ServerHarness.json(r.body()).get("choices").get(0);
        assertFalse(choice.get("message").has("tool_calls"), "tool_choice none reads no calls: " + choice);
        assertTrue(choice.get("message").get("content").isTextual());
    }

    static List<Arguments> badTools() {
        String function = "{\"type\": \"function\", \"function\": ";
        return List.of(
                Arguments.of("\"tools\": [" + function + "{\"name\": \"f\", \"parameters\": [1]}}]",
                        "tools[0].function.parameters", "JSON schema object"),
                Arguments.of("\"tools\": [" + function + "{\"description\": \"no name\"}}]",
                        "tools[0].function.name", "required"),
                Arguments.of("\"tools\": [" + function + "{\"name\": \"f\"}}, " + function + "{\"name\": \"f\"}}]",
                        "tools[1].function.name", "twice"),
                Arguments.of("\"tools\": [{\"type\": \"retrieval\"}]", "tools[0].type", "'function'"),
                Arguments.of("\"tools\": [" + function + "{\"name\": \"f\"}}], \"tool_choice\": {\"type\": \"function\","
                        + " \"function\": {\"name\": \"g\"}}", "tool_choice", "'g'"),
                Arguments.of("\"tool_choice\": \"required\"", "tool_choice", "needs 'tools'"),
                Arguments.of("\"tools\": [" + function + "{\"name\": \"f\"}}], \"tool_choice\": \"sometimes\"",
                        "tool_choice", "sometimes"),
                Arguments.of("\"tools\": [" + function + "{\"name\": \"f\", \"parameters\": {\"type\": \"object\","
                        + " \"properties\": {\"n\": {\"type\": \"integer\", \"multipleOf\": 3}}}}}],"
                        + " \"tool_choice\": \"required\"", "tools[0].function.parameters", "multipleOf"),
                Arguments.of("\"tools\": [" + function + "{\"name\": \"f\"}}], \"tool_choice\": \"required\","
                        + " \"response_format\": {\"type\": \"json_object\"}", "tool_choice", "structured-output"));
    }

    @ParameterizedTest(name = "{1}: {2}")
    @MethodSource("badTools")
    void badToolsAreRefusedNamingTheField(String fields, String param, String problem) {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + MESSAGES + ", "
                + fields + "}");
        assertEquals(400, r.statusCode(), r.body());
        JsonNode error = ServerHarness.json(r.body()).get("error");
        assertEquals(param, error.get("param").asText(), r.body());
        assertTrue(error.get("message").asText().contains(problem), r.body());
    }

    @Test
    void aToolMessageWithoutItsCallIdIsRefused() {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", \"messages\":"
                + " [{\"role\": \"tool\", \"content\": \"18 C\"}]}");
        assertEquals(400, r.statusCode(), r.body());
        assertEquals("messages[0].tool_call_id", ServerHarness.json(r.body()).get("error").get("param").asText());
    }
}
