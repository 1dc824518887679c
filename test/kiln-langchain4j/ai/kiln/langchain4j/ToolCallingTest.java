package ai.kiln.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Reading calls out of a model's text in each format, as Kiln's server reads them. */
class ToolCallingTest {

    @Test
    void theFormatIsTheOneTheTemplatesMarkersName() {
        assertEquals(ToolCalling.HERMES, ToolCalling.ofTemplate("{{ '<tool_call>' }}"));
        assertEquals(ToolCalling.MISTRAL, ToolCalling.ofTemplate("[TOOL_CALLS]"));
        assertEquals(ToolCalling.LLAMA3_JSON, ToolCalling.ofTemplate("<|start_header_id|>"));
        assertEquals(ToolCalling.HERMES, ToolCalling.ofTemplate(null));
    }

    @Test
    void hermesCallsAfterTextLeaveTheTextAsTheAnswer() {
        ToolCalling.Parsed parsed = ToolCalling.HERMES.parse("Let me look.\n<tool_call>\n{\"name\": \"get_weather\","
                + " \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", false);

        assertEquals("Let me look.", parsed.text());
        assertEquals(List.of("get_weather {\"city\":\"Paris\"}"), describe(parsed.calls()));
    }

    @Test
    void llamaCallsSeparatedBySemicolonsAreAllRead() {
        ToolCalling.Parsed parsed = ToolCalling.LLAMA3_JSON.parse("<|python_tag|>{\"name\": \"a\", \"parameters\":"
                + " {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}", false);

        assertNull(parsed.text());
        assertEquals(List.of("a {}", "b {\"x\":1}"), describe(parsed.calls()));
    }

    @Test
    void aForcedMistralCallIsTheArrayAlone() {
        ToolCalling.Parsed parsed = ToolCalling.MISTRAL.parse("[{\"name\": \"now\", \"arguments\": {}}]", true);

        assertEquals(List.of("now {}"), describe(parsed.calls()));
    }

    @Test
    void malformedCallsStayTextUnchanged() {
        String missingBrace = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}</tool_call>";
        String noName = "{\"parameters\": {}}";

        assertEquals(new ToolCalling.Parsed(missingBrace, List.of()), ToolCalling.HERMES.parse(missingBrace, false));
        assertEquals(new ToolCalling.Parsed(noName, List.of()), ToolCalling.LLAMA3_JSON.parse(noName, false));
    }

    private static List<String> describe(List<ToolExecutionRequest> calls) {
        return calls.stream().map(c -> c.name() + " " + c.arguments()).toList();
    }
}
