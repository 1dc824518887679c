package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files Kiln cannot use are refused with errors that name the file and the problem. */
class TokenizerErrorsTest {
    @TempDir
    Path dir;

    private static final String MINIMAL_MODEL = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}";

    private Path write(String tokenizerJson) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), tokenizerJson);
        return dir;
    }

    @Test
    void minimalFileWorks() throws IOException {
        Tokenizer tokenizer = Tokenizer.load(write("{" + MINIMAL_MODEL + "}"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(new int[] {2, 0}, tokenizer.encode("aba", false));
        // No decoder: Hugging Face joins tokens with spaces.
        assertEquals("ab a", tokenizer.decode(new int[] {2, 0}, false));
    }

    @Test
    void missingFileIsNamed() {
        TokenizerLoadException e = assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("not found"), e.getMessage());
    }

    @Test
    void malformedJsonNamesFileAndPosition() throws IOException {
        write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,, }}");
        TokenizerLoadException e = assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json"), e.file());
        assertTrue(e.getMessage().contains("malformed JSON") && e.getMessage().contains("line 1"), e.getMessage());
    }

    @Test
    void missingAndIllTypedFieldsAreNamed() throws IOException {
        write("{}");
        assertTrue(assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir)).getMessage()
                .contains("field model is missing"));
        write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}}");
        assertTrue(assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir)).getMessage()
                .contains("model.vocab[\"a\"] must be an integer"));
        write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}");
        assertTrue(assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir)).getMessage()
                .contains("model.merges[0] uses 'ab', which is not in model.vocab"));
        write("{" + MINIMAL_MODEL + ", \"added_tokens\": [{\"id\": 3}]}");
        assertTrue(assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir)).getMessage()
                .contains("added_tokens[0].content is missing"));
    }

    @Test
    void unsupportedComponentsAreNamed() throws IOException {
        write("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}");
        UnsupportedComponentException model = assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir));
        assertEquals("model", model.component());
        assertTrue(model.getMessage().contains("Unigram") && model.getMessage().contains("tokenizer.json"), model.getMessage());

        write("{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"\"}, " + MINIMAL_MODEL + "}");
        UnsupportedComponentException normalizer = assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir));
        assertEquals("normalizer", normalizer.component());
        assertTrue(normalizer.getMessage().contains("'Precompiled'"), normalizer.getMessage());

        write("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"BertPreTokenizer\"}]}, " + MINIMAL_MODEL + "}");
        assertEquals("pre-tokenizer", assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir)).component());

        write("{\"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\"}, " + MINIMAL_MODEL + "}");
        assertEquals("decoder", assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir)).component());

        write("{\"post_processor\": {\"type\": \"Whatever\"}, " + MINIMAL_MODEL + "}");
        assertEquals("post-processor", assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir)).component());

        write("{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {}, \"merges\": []}}");
        assertTrue(assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir)).getMessage().contains("dropout"));
    }

    @Test
    void untranslatableRegexIsNamed() throws IOException {
        write("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\\\\Kb\"}, \"behavior\": \"Isolated\"}, "
                + MINIMAL_MODEL + "}");
        UnsupportedComponentException e = assertThrows(UnsupportedComponentException.class, () -> Tokenizer.load(dir));
        assertEquals("regex", e.component());
        assertTrue(e.getMessage().contains("\\K"), e.getMessage());
    }

    @Test
    void badTokenizerConfigIsNamed() throws IOException {
        write("{" + MINIMAL_MODEL + "}");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": 7}");
        TokenizerLoadException wrongType = assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer_config.json"), wrongType.file());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
        assertTrue(assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir)).getMessage()
                .contains("eos_token '</s>' is not in the vocabulary"));
    }

    @Test
    void loneSurrogatesAreRefusedWithTheirPosition() throws IOException {
        Tokenizer tokenizer = Tokenizer.load(write("{" + MINIMAL_MODEL + "}"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tokenizer.encode("ab\uD800", true));
        assertTrue(e.getMessage().contains("U+D800") && e.getMessage().contains("index 2"), e.getMessage());
        // A valid pair is fine (here unknown to the model, and without an unknown token: dropped, as in Hugging Face).
        assertEquals(0, tokenizer.encode("\uD83D\uDE00", true).length);
    }

    @Test
    void chatTemplateSourcesAndAbsence() throws IOException {
        write("{" + MINIMAL_MODEL + "}");
        Tokenizer none = Tokenizer.load(dir);
        assertEquals(false, none.hasChatTemplate());
        assertThrows(IllegalStateException.class, () -> none.applyChatTemplate(List.of(), true));

        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D{{ messages|length }}\"}]}");
        assertEquals("D1", Tokenizer.load(dir).applyChatTemplate(List.of(Map.of("role", "user", "content", "x")), true));

        Files.writeString(dir.resolve("chat_template.jinja"), "J{{ add_generation_prompt }}\n");
        assertEquals("JTrue", Tokenizer.load(dir).applyChatTemplate(List.of(), true));
    }

    @Test
    void templateErrorsAreExplained() throws IOException {
        write("{" + MINIMAL_MODEL + "}");
        Files.writeString(dir.resolve("chat_template.jinja"), "{% if messages[0].role != 'system' %}{{ raise_exception('need a system message') }}{% endif %}ok");
        Tokenizer tokenizer = Tokenizer.load(dir);
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> tokenizer.applyChatTemplate(List.of(Map.of("role", "user", "content", "x")), true));
        assertTrue(refused.getMessage().contains("need a system message"), refused.getMessage());
        assertEquals("ok", tokenizer.applyChatTemplate(List.of(Map.of("role", "system", "content", "x")), true));

        Files.writeString(dir.resolve("chat_template.jinja"), "{% for m in messages %}");
        IllegalArgumentException broken = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.load(dir).applyChatTemplate(List.of(), true));
        assertTrue(broken.getMessage().contains("chat_template.jinja") && broken.getMessage().contains("endfor"), broken.getMessage());
    }

    private String loadError(String tokenizerJson) throws IOException {
        write(tokenizerJson);
        TokenizerLoadException e = assertThrows(TokenizerLoadException.class, () -> Tokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json"), e.file());
        return e.getMessage();
    }

    private static void assertContains(String message, String... fragments) {
        for (String fragment : fragments) {
            assertTrue(message.contains(fragment), "message '" + message + "' should contain '" + fragment + "'");
        }
    }

    @Test
    void vocabularyIdFarPastTheVocabularyIsRefusedWithoutSizingATableByIt() throws IOException {
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"!\": 1000000000}, \"merges\": []}}"),
                "model.vocab[\"!\"] is 1000000000, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"!\": 2147483647}, \"merges\": []}}"),
                "model.vocab[\"!\"] is 2147483647, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"!\": 16777216}, \"merges\": []}}"),
                "model.vocab[\"!\"] is 16777216, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}"),
                "model.vocab[\"a\"] is -1, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 4294967296}, \"merges\": []}}"),
                "model.vocab[\"a\"] must be an integer");
    }

    @Test
    void vocabularyIdsMustBeUnique() throws IOException {
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0, \"ab\": 0}, \"merges\": [\"a b\"]}}"),
                "model.vocab[\"b\"] is 0, the id of model.vocab[\"a\"] too");
        assertContains(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 1}, \"merges\": []}}"),
                "model.vocab[\"ab\"] is 1, the id of model.vocab[\"b\"] too");
    }

    @Test
    void gapsBetweenIdsAreFineAsInHuggingFace() throws IOException {
        write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2, \"c\": 70000}, \"merges\": []},"
                + " \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\"}, {\"id\": 70001, \"content\": \"</s>\"}]}");
        Tokenizer tokenizer = Tokenizer.load(dir);
        assertArrayEquals(new int[] {0, 2, 70000}, tokenizer.encode("abc", false));
    }

    @Test
    void addedTokenIdsAreCheckedLikewise() throws IOException {
        assertContains(loadError("{" + MINIMAL_MODEL + ", \"added_tokens\": [{\"id\": 1000000000, \"content\": \"<x>\"}]}"),
                "added_tokens[0].id is 1000000000, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{" + MINIMAL_MODEL + ", \"added_tokens\": [{\"id\": -3, \"content\": \"<x>\"}]}"),
                "added_tokens[0].id is -3, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{" + MINIMAL_MODEL + ", \"added_tokens\": [{\"id\": 3, \"content\": \"<x>\"},"
                        + " {\"id\": 3, \"content\": \"<y>\"}]}"),
                "added_tokens[1].id is 3, the id of added token '<x>' too");
        assertContains(loadError("{" + MINIMAL_MODEL + ", \"added_tokens\": [{\"id\": \"3\", \"content\": \"<x>\"}]}"),
                "added_tokens[0].id must be an integer");
    }

    @Test
    void postProcessorIdsMustBeInTheVocabulary() throws IOException {
        assertContains(loadError("{" + MINIMAL_MODEL + ", \"post_processor\": {\"type\": \"TemplateProcessing\","
                        + " \"single\": \"<s> $A\", \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [20000000]}}}}"),
                "post_processor.special_tokens[\"<s>\"].ids[0] is 20000000, outside the supported token ids [0, 16777216)");
        assertContains(loadError("{" + MINIMAL_MODEL + ", \"post_processor\": {\"type\": \"BertProcessing\","
                        + " \"cls\": [\"a\", -7], \"sep\": [\"b\", 1]}}"),
                "post_processor.cls[1] is -7, outside the supported token ids [0, 16777216)");
    }

    private IllegalArgumentException templateError(String template) throws IOException {
        write("{" + MINIMAL_MODEL + "}");
        Files.writeString(dir.resolve("chat_template.jinja"), template);
        return assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.load(dir).applyChatTemplate(List.of(Map.of("role", "user", "content", "x")), true));
    }

    @Test
    void unknownFilterIsATemplateErrorWithItsLine() throws IOException {
        IllegalArgumentException e = templateError("{% for m in messages %}\n{{ m.content | nosuchfilter }}\n{% endfor %}");
        assertContains(e.getMessage(), "chat_template.jinja", "unknown filter 'nosuchfilter'", "line 2");
        IllegalArgumentException block = templateError("a\nb\n{% filter shout %}x{% endfilter %}");
        assertContains(block.getMessage(), "unknown filter 'shout'", "line 3");
        IllegalArgumentException chained = templateError("{{ messages | length | squared }}");
        assertContains(chained.getMessage(), "unknown filter 'squared'", "line 1");
    }

    @Test
    void filterLikeTextOutsideExpressionsIsNotAFilter() throws IOException {
        write("{" + MINIMAL_MODEL + "}");
        Files.writeString(dir.resolve("chat_template.jinja"),
                "a | b {{ 'x | nosuch' }}{# y | nosuch #}{% raw %}{{ z | nosuch }}{% endraw %}{{ messages | length | string }}");
        assertEquals("a | b x | nosuch{{ z | nosuch }}1",
                Tokenizer.load(dir).applyChatTemplate(List.of(Map.of("role", "user", "content", "x")), true));
    }

    @Test
    void endlessMacroRecursionIsATemplateError() throws IOException {
        IllegalArgumentException direct = templateError("{% macro f(x) %}{{ f(x) }}{% endmacro %}\n{{ f(1) }}");
        assertContains(direct.getMessage(), "chat_template.jinja", "failed", "recursion", "'f'", "(line ");
        IllegalArgumentException mutual = templateError(
                "{% macro f(x) %}{{ g(x) }}{% endmacro %}{% macro g(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}");
        assertContains(mutual.getMessage(), "recursion", "(line ");
    }

    @Test
    void macroRecursionThatEndsRendersAsInJinja2() throws IOException {
        write("{" + MINIMAL_MODEL + "}");
        Files.writeString(dir.resolve("chat_template.jinja"),
                "{% macro count(n) %}{% if n > 0 %}{{ n }}{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(5) }}");
        assertEquals("54321", Tokenizer.load(dir).applyChatTemplate(List.of(), true));
    }
}

