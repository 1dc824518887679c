package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Chat prompts byte-identical to transformers 5.17's apply_chat_template(messages, tokenize=False,
 * add_generation_prompt=...) for the Llama 3 and Qwen 3 templates, and for small templates that
 * exercise the Jinja features chat templates use.
 */
class ChatTemplateFixtureTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNode FIXTURE = TestVocabularies.fixture("chat-templates.json");

    static List<Map<String, Object>> messages(JsonNode node) {
        return JSON.convertValue(node, new TypeReference<List<Map<String, Object>>>() { });
    }

    static Map<String, Object> variables(JsonNode node) {
        return node == null ? Map.of() : JSON.convertValue(node, new TypeReference<Map<String, Object>>() { });
    }

    @TestFactory
    Stream<DynamicTest> realTemplates() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : List.of("llama3", "qwen3")) {
            for (JsonNode render : FIXTURE.get("templates").get(name).get("renders")) {
                tests.add(DynamicTest.dynamicTest(name + " " + render.get("name").textValue(), () -> {
                    Tokenizer tokenizer = TestVocabularies.tokenizer(name);
                    String prompt = tokenizer.applyChatTemplate(messages(render.get("messages")),
                            render.get("add_generation_prompt").booleanValue(), variables(render.get("extra")));
                    assertEquals(render.get("prompt").textValue(), prompt);
                    // Templates that write the BOS themselves are encoded without adding special tokens.
                    assertArrayEquals(TestVocabularies.ints(render.get("ids")), tokenizer.encode(prompt, false));
                }));
            }
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> featureTemplates() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode render : FIXTURE.get("feature_templates")) {
            String label = render.get("template_name").textValue() + " / " + render.get("conversation").textValue()
                    + " add_generation_prompt=" + render.get("add_generation_prompt").booleanValue();
            String error = render.has("error") ? render.get("error").textValue() : null;
            if (error != null && !error.startsWith("TemplateError")) {
                // Python type errors (str + list, list.startswith): Jinjava is more lenient and
                // renders something; there is no reference text to compare with.
                continue;
            }
            tests.add(DynamicTest.dynamicTest(label, () -> {
                ChatTemplate template = new ChatTemplate(render.get("template").textValue(), "feature template",
                        new TokenizerConfig("<|begin_of_text|>", "<|end_of_text|>", null, null, null, null));
                List<Map<String, Object>> messages = messages(render.get("messages"));
                boolean addGenerationPrompt = render.get("add_generation_prompt").booleanValue();
                Map<String, Object> extra = variables(render.get("extra"));
                if (render.get("template_name").textValue().equals("loop-controls")) {
                    // Documented limitation: Jinjava has no {% break %} / {% continue %}; the failure is explicit.
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> template.render(messages, addGenerationPrompt, extra));
                    assertTrue(e.getMessage().contains("Unknown tag"), e.getMessage());
                    return;
                }
                if (error != null) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> template.render(messages, addGenerationPrompt, extra));
                    assertTrue(e.getMessage().contains(error.substring("TemplateError: ".length())), e.getMessage());
                    return;
                }
                assertEquals(render.get("prompt").textValue(), template.render(messages, addGenerationPrompt, extra));
            }));
        }
        return tests.stream();
    }

    @Test
    void modelWithoutTemplateRefusesChat() {
        Tokenizer llama2 = TestVocabularies.tokenizer("llama2");
        assertEquals(false, llama2.hasChatTemplate());
        // transformers refuses too: "Cannot use chat template functions because tokenizer.chat_template is not set".
        assertTrue(FIXTURE.get("templates").get("llama2").get("renders").get(0).get("error").textValue()
                .contains("chat_template is not set"));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> llama2.applyChatTemplate(List.of(Map.of("role", "user", "content", "Hi")), true));
        assertTrue(e.getMessage().contains("has no chat template"), e.getMessage());
    }

    @Test
    void realTemplatesAreAvailable() {
        assertTrue(TestVocabularies.tokenizer("llama3").hasChatTemplate());
        assertTrue(TestVocabularies.tokenizer("qwen3").hasChatTemplate());
    }
}
