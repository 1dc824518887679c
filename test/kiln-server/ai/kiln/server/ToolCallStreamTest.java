package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A streamed choice's text with tools offered, fed in the pieces a detokenizer gives: content goes
 * out at once until a call may begin, a marker's prefix is held until it is known not to be one,
 * and the held call is parsed at the end (or given back as content when it is no call).
 */
class ToolCallStreamTest {

    @Test
    void contentGoesOutUntilTheCallAndTheCallIsReadAtTheEnd() {
        ToolCallStream s = new ToolCallStream(ToolCallFormat.HERMES, false);
        assertEquals("Let me", s.push("Let me"));
        assertEquals(" check. ", s.push(" check. <tool"));
        assertEquals("", s.push("_call>\n{\"name\": \"f\", "));
        assertEquals("", s.push("\"arguments\": {\"x\": 1}}\n</tool_call>"));
        ToolCallFormat.Parsed p = s.finish();
        assertNull(p.content());
        assertEquals(List.of("f"), p.calls().stream().map(ToolCallFormat.ToolCall::name).toList());
        assertEquals("{\"x\":1}", p.calls().get(0).arguments());
    }

    @Test
    void aHeldMarkerPrefixGoesOutOnceItIsNoMarker() {
        ToolCallStream s = new ToolCallStream(ToolCallFormat.HERMES, false);
        assertEquals("a ", s.push("a <to"));
        assertEquals("<tomato", s.push("mato"));
        ToolCallFormat.Parsed p = s.finish();
        assertNull(p.content());
        assertEquals(List.of(), p.calls());
    }

    @Test
    void aMalformedHeldCallEndsAsContent() {
        ToolCallStream s = new ToolCallStream(ToolCallFormat.LLAMA3_JSON, false);
        assertEquals("", s.push("{\"name\": \"f\", \"parameters\": "));
        ToolCallFormat.Parsed p = s.finish();
        assertEquals("{\"name\": \"f\", \"parameters\": ", p.content());
        assertEquals(List.of(), p.calls());
    }

    @Test
    void aForcedCallIsHeldWhole() {
        ToolCallStream s = new ToolCallStream(ToolCallFormat.MISTRAL, true);
        assertEquals("", s.push("[{\"name\": \"f\", "));
        assertEquals("", s.push("\"arguments\": {}}]"));
        assertEquals(List.of("f"), s.finish().calls().stream().map(ToolCallFormat.ToolCall::name).toList());
    }
}
