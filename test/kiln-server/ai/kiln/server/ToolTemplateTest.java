package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A chat request with tools, earlier tool calls and a tool result, turned into template input as
 * the chat route does (ChatRequest, ChatTools) and rendered by the model's tokenizer, against what
 * Jinja2 renders for the same templates and request (scripts/render_tool_templates.py, in the
 * environment transformers' apply_chat_template builds). The templates follow the published
 * structure of Qwen 2.5's and Llama 3.1's tool-calling templates; they were written for this test
 * (nothing can be downloaded from Hugging Face where it was made), so equality with Jinja2 is
 * what is shown, not byte-equality with the released models' prompts.
 */
class ToolTemplateTest {

    static final Path TEMPLATES = Fixtures.ROOT.resolveSibling("chat-templates");

    @ParameterizedTest
    @ValueSource(strings = {"qwen2.5-tools", "llama3.1-tools"})
    void toolsCallsAndResultsRenderAsJinja2RendersThem(String name, @TempDir Path model) throws Exception {
        Path fixture = Fixtures.named("llama3-gqa").dir();
        Files.copy(fixture.resolve("tokenizer.json"), model.resolve("tokenizer.json"));
        Files.copy(fixture.resolve("tokenizer_config.json"), model.resolve("tokenizer_config.json"));
        Files.copy(TEMPLATES.resolve(name + ".jinja"), model.resolve("chat_template.jinja"));
        Tokenizer tokenizer = Tokenizer.load(model);
        ChatRequest request = ChatRequest.parse(ServerHarness.json(
                Files.readString(TEMPLATES.resolve("tool-conversation.json"), StandardCharsets.UTF_8)));
        String prompt = tokenizer.applyChatTemplate(request.messages(), true, request.tools().templateVariables());
        assertEquals(Files.readString(TEMPLATES.resolve(name + ".expected.txt"), StandardCharsets.UTF_8), prompt);
    }
}
