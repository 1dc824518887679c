package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tools of a request reach the model's chat template through the engine: the llama3-gqa fixture
 * served with the Qwen 2.5 style tool template (test/resources/chat-templates), no
 * --tool-call-parser given, so the format comes from the template. A request with tools has the
 * template's tool preamble in its prompt (more prompt tokens; exactly the tokens of the prompt
 * Tokenizer renders), one with tool_choice "none" has none, and a named call is read in the hermes
 * format the template names.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ToolPromptServerTest {

    @TempDir
    static Path model;
    static ServerHarness harness;

    static final String MESSAGES = "\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}]";
    static final String TOOLS = "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
            + " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"maxLength\": 6}},"
            + " \"required\": [\"city\"], \"additionalProperties\": false}}}]";

    @BeforeAll
    static void start() throws IOException {
        Path fixture = Fixtures.named("llama3-gqa").dir();
        try (Stream<Path> files = Files.list(fixture)) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName().toString()));
            }
        }
        Files.copy(ToolTemplateTest.TEMPLATES.resolve("qwen2.5-tools.jinja"), model.resolve("chat_template.jinja"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        // The template's tool preamble alone passes the fixture's 512 positions in this small
        // vocabulary; the weights are random, so a longer context changes nothing the test reads.
        Path config = model.resolve("config.json");
        com.fasterxml.jackson.databind.node.ObjectNode json = (com.fasterxml.jackson.databind.node.ObjectNode)
                ServerHarness.json(Files.readString(config));
        json.put("max_position_embeddings", 2048);
        Files.writeString(config, json.toString());
        harness = ServerHarness.start(model, ServerHarness.serverOptions(), ServerHarness.engineOptions().build(), true);
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    private static int promptTokens(String fields) {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + MESSAGES
                + fields + ", \"max_tokens\": 1}");
        assertEquals(200, r.statusCode(), r.body());
        return ServerHarness.json(r.body()).get("usage").get("prompt_tokens").asInt();
    }

    @Test
    void theToolsAreInThePromptUnlessToolChoiceIsNone() throws Exception {
        int plain = promptTokens("");
        int withTools = promptTokens(", " + TOOLS);
        int none = promptTokens(", " + TOOLS + ", \"tool_choice\": \"none\"");
        ChatRequest request = ChatRequest.parse(ServerHarness.json("{\"model\": \"llama3-gqa\", " + MESSAGES + ", "
                + TOOLS + "}"));
        String prompt = harness.tokenizer.applyChatTemplate(request.messages(), true,
                request.tools().templateVariables());
        assertTrue(prompt.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""), prompt);
        assertEquals(harness.tokenizer.encode(prompt, false).length, withTools);
        assertTrue(withTools > plain + 50, withTools + " vs " + plain);
        assertEquals(plain, none);
    }

    @Test
    void aNamedCallIsReadInTheFormatTheTemplateNames() {
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", " + MESSAGES + ", "
                + TOOLS + ", \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}},"
                + " \"seed\": 2, \"max_tokens\": 80, \"logprobs\": true}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode choice = ServerHarness.json(r.body()).get("choices").get(0);
        assertEquals("tool_calls", choice.get("finish_reason").asText(), choice.toString());
        JsonNode call = choice.get("message").get("tool_calls").get(0).get("function");
        assertEquals("get_weather", call.get("name").asText());
        assertEquals(List.of("city"), List.copyOf(iterable(ServerHarness.json(call.get("arguments").asText()))));
        // The output's own text, from its tokens: the call in hermes markers.
        StringBuilder raw = new StringBuilder();
        for (JsonNode token : choice.get("logprobs").get("content")) {
            raw.append(token.get("token").asText());
        }
        assertTrue(raw.toString().matches("(?s)<tool_call>\n\\{\"name\": ?\"get_weather\", ?\"arguments\": ?\\{.*}}\n</tool_call>"),
                raw.toString());
    }

    private static List<String> iterable(JsonNode object) {
        List<String> names = new java.util.ArrayList<>();
        object.fieldNames().forEachRemaining(names::add);
        return names;
    }
}
