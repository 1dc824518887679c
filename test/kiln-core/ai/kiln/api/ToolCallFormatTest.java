package ai.kiln.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Reading calls out of a model's text in each format, as Kiln's server reads them. */
class ToolCallFormatTest {

    @Test
    void theFormatIsTheOneTheTemplatesMarkersName() {
        assertEquals(ToolCallFormat.HERMES, ToolCallFormat.ofTemplate("{{ '<tool_call>' }}"));
        assertEquals(ToolCallFormat.MISTRAL, ToolCallFormat.ofTemplate("[TOOL_CALLS]"));
        assertEquals(ToolCallFormat.LLAMA3_JSON, ToolCallFormat.ofTemplate("<|start_header_id|>"));
        assertEquals(ToolCallFormat.HERMES, ToolCallFormat.ofTemplate(null));
    }

    @Test
    void hermesCallsAfterTextLeaveTheTextAsTheAnswer() {
        ToolCallFormat.Parsed parsed = ToolCallFormat.HERMES.parse("Let me look.\n<tool_call>\n{\"name\": \"get_weather\","
                + " \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", false);

        assertEquals("Let me look.", parsed.text());
        assertEquals(List.of("get_weather {\"city\":\"Paris\"}"), describe(parsed.calls()));
    }

    @Test
    void llamaCallsSeparatedBySemicolonsAreAllRead() {
        ToolCallFormat.Parsed parsed = ToolCallFormat.LLAMA3_JSON.parse("<|python_tag|>{\"name\": \"a\", \"parameters\":"
                + " {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}", false);

        assertNull(parsed.text());
        assertEquals(List.of("a {}", "b {\"x\":1}"), describe(parsed.calls()));
    }

    @Test
    void aForcedMistralCallIsTheArrayAlone() {
        ToolCallFormat.Parsed parsed = ToolCallFormat.MISTRAL.parse("[{\"name\": \"now\", \"arguments\": {}}]", true);

        assertEquals(List.of("now {}"), describe(parsed.calls()));
    }

    @Test
    void malformedCallsStayTextUnchanged() {
        String missingBrace = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}</tool_call>";
        String noName = "{\"parameters\": {}}";

        assertEquals(new ToolCallFormat.Parsed(missingBrace, List.of()), ToolCallFormat.HERMES.parse(missingBrace, false));
        assertEquals(new ToolCallFormat.Parsed(noName, List.of()), ToolCallFormat.LLAMA3_JSON.parse(noName, false));
    }

    private static List<String> describe(List<ToolCallFormat.ToolCall> calls) {
        return calls.stream().map(c -> c.name() + " " + c.arguments()).toList();
    }
}
