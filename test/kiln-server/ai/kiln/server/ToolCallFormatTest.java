package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.engine.ApiMapping;
import ai.kiln.grammar.Grammar;
import ai.kiln.grammar.ParseState;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The tool-call formats on outputs written the way each model family writes its calls (Qwen 2.5's
 * and Hermes' tags, Llama 3.1's JSON with and without {@code <|python_tag|>}, Mistral's
 * {@code [TOOL_CALLS]} array), malformed ones among them, which stay content; and the grammar of a
 * forced call accepting the format's own text and refusing other names.
 */
class ToolCallFormatTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void hermesReadsEveryTaggedCallAndKeepsTheTextBefore() {
        String out = "Let me check both.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                + "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}\n</tool_call>";
        ToolCallFormat.Parsed p = ToolCallFormat.HERMES.parse(out);
        assertEquals("Let me check both.", p.content());
        assertEquals(2, p.calls().size());
        assertEquals("get_weather", p.calls().get(0).name());
        assertEquals("{\"city\":\"Paris\"}", p.calls().get(0).arguments());
        assertEquals("get_time", p.calls().get(1).name());
        assertTrue(p.calls().get(0).id().matches("call_[0-9a-f]{24}"), p.calls().get(0).id());
        assertTrue(!p.calls().get(0).id().equals(p.calls().get(1).id()));
    }

    @Test
    void hermesReadsACallTheEndOfSequenceCutBeforeItsClosingTag() {
        ToolCallFormat.Parsed p = ToolCallFormat.HERMES.parse("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n");
        assertNull(p.content());
        assertEquals(1, p.calls().size());
        assertEquals("{}", p.calls().get(0).arguments());
    }

    @Test
    void hermesTakesArgumentsGivenAsJsonText() {
        ToolCallFormat.Parsed p = ToolCallFormat.HERMES.parse(
                "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>");
        assertEquals("{\"x\":1}", p.calls().get(0).arguments());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}\n</tool_call>", // unbalanced brace
        "<tool_call>\n{\"arguments\": {}}\n</tool_call>", // no name
        "<tool_call>\n{\"name\": 3, \"arguments\": {}}\n</tool_call>", // name not a string
        "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>", // arguments not an object
        "<tool_call>\n[\"f\"]\n</tool_call>", // not an object
        "<tool_call>\n</tool_call>"})
    void hermesLeavesAMalformedCallAsContent(String out) {
        ToolCallFormat.Parsed p = ToolCallFormat.HERMES.parse(out);
        assertEquals(out, p.content());
        assertEquals(List.of(), p.calls());
    }

    @Test
    void hermesLeavesPlainTextAsContent() {
        ToolCallFormat.Parsed p = ToolCallFormat.HERMES.parse("The weather is fine {\"name\": \"f\"}");
        assertEquals("The weather is fine {\"name\": \"f\"}", p.content());
        assertEquals(List.of(), p.calls());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        "  {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"})
    void llamaReadsTheJsonCallWithOrWithoutThePythonTag(String out) {
        ToolCallFormat.Parsed p = ToolCallFormat.LLAMA3_JSON.parse(out);
        assertNull(p.content());
        assertEquals(1, p.calls().size());
        assertEquals("get_weather", p.calls().get(0).name());
        assertEquals("{\"city\":\"Paris\"}", p.calls().get(0).arguments());
    }

    @Test
    void llamaReadsCallsSeparatedBySemicolons() {
        ToolCallFormat.Parsed p = ToolCallFormat.LLAMA3_JSON.parse(
                "{\"name\": \"a\", \"parameters\": {\"s\": \"x;y\"}}; {\"name\": \"b\", \"parameters\": {}}");
        assertEquals(List.of("a", "b"), p.calls().stream().map(ToolCallFormat.ToolCall::name).toList());
        assertEquals("{\"s\":\"x;y\"}", p.calls().get(0).arguments());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "Paris is sunny today.",
        "{\"name\": \"a\", \"parameters\": {}} and then some words",
        "{\"name\": \"a\", \"parameters\": {\"x\": }",
        "{\"city\": \"Paris\"}"})
    void llamaLeavesAnythingButCallsAsContent(String out) {
        ToolCallFormat.Parsed p = ToolCallFormat.LLAMA3_JSON.parse(out);
        assertEquals(out, p.content());
        assertEquals(List.of(), p.calls());
    }

    @Test
    void mistralReadsTheArrayAfterTheMarker() {
        ToolCallFormat.Parsed p = ToolCallFormat.MISTRAL.parse("[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\":"
                + " {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]");
        assertNull(p.content());
        assertEquals(List.of("get_weather", "get_time"), p.calls().stream().map(ToolCallFormat.ToolCall::name).toList());
        assertEquals("{\"city\":\"Paris\"}", p.calls().get(0).arguments());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "[{\"name\": \"f\", \"arguments\": {}}]", // no marker: an array in the answer's text
        "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}}", // unclosed
        "[TOOL_CALLS][]",
        "[TOOL_CALLS]{\"name\": \"f\", \"arguments\": {}}"})
    void mistralLeavesAMalformedCallAsContent(String out) {
        ToolCallFormat.Parsed p = ToolCallFormat.MISTRAL.parse(out);
        assertEquals(out, p.content());
        assertEquals(List.of(), p.calls());
    }

    @Test
    void theFormatFollowsTheMarkersTheTemplateNames() {
        assertEquals(ToolCallFormat.HERMES, ToolCallFormat.ofTemplate("{{- '<tool_call>\\n' }}"));
        assertEquals(ToolCallFormat.MISTRAL, ToolCallFormat.ofTemplate("{{- '[TOOL_CALLS]' }}"));
        assertEquals(ToolCallFormat.LLAMA3_JSON, ToolCallFormat.ofTemplate("{{- '<|python_tag|>' }}"));
        assertEquals(ToolCallFormat.HERMES, ToolCallFormat.ofTemplate(null));
        assertEquals(ToolCallFormat.LLAMA3_JSON, ToolCallFormat.ofFlag("llama3_json"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ToolCallFormat.ofFlag("pythonic"));
        assertTrue(e.getMessage().contains("pythonic"), e.getMessage());
    }

    @Test
    void streamingHoldsTextBackFromWhereACallMayStart() {
        assertEquals(-1, ToolCallFormat.HERMES.callStart("Sure, "));
        assertEquals(6, ToolCallFormat.HERMES.callStart("Sure, <tool"));
        assertEquals(6, ToolCallFormat.HERMES.callStart("Sure, <tool_call>{\"na"));
        assertEquals(-1, ToolCallFormat.HERMES.callStart("a < b"));
        assertEquals(1, ToolCallFormat.LLAMA3_JSON.callStart(" {\"name\""));
        assertEquals(-1, ToolCallFormat.LLAMA3_JSON.callStart("It is {sunny}"));
        assertEquals(0, ToolCallFormat.MISTRAL.callStart("[TOOL"));
    }

    static final String PARAMETERS = "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
            + " \"required\": [\"city\"], \"additionalProperties\": false}";

    private static List<ChatTools.Tool> tools() throws Exception {
        return List.of(new ChatTools.Tool("get_weather", null, JSON.readTree(PARAMETERS)),
                new ChatTools.Tool("get_time", "the time", null));
    }

    private static boolean accepts(Grammar g, String text) {
        ParseState s = g.initialState();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            s = g.advance(s, b & 0xFF);
            if (s.isDead()) {
                return false;
            }
        }
        return s.complete();
    }

    @Test
    void aForcedCallsGrammarAcceptsTheFormatsOwnTextAndOnlyTheToolsNames() throws Exception {
        Grammar hermes = ApiMapping.grammar(ToolCallFormat.HERMES.forcedCall(tools()));
        String call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
        assertTrue(accepts(hermes, call));
        assertTrue(accepts(hermes, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
        assertTrue(!accepts(hermes, call.replace("get_weather", "get_water")));
        assertTrue(!accepts(hermes, call.replace("\"city\"", "\"town\"")));
        assertEquals("get_weather", ToolCallFormat.HERMES.parseForced(call).calls().get(0).name());

        Grammar llama = ApiMapping.grammar(ToolCallFormat.LLAMA3_JSON.forcedCall(tools()));
        assertTrue(accepts(llama, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"));
        assertTrue(!accepts(llama, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}"));

        Grammar mistral = ApiMapping.grammar(ToolCallFormat.MISTRAL.forcedCall(tools()));
        String array = "[{\"name\": \"get_time\", \"arguments\": {}}]";
        assertTrue(accepts(mistral, array));
        assertEquals("get_time", ToolCallFormat.MISTRAL.parseForced(array).calls().get(0).name());
    }
}
