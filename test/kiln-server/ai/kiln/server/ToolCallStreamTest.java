package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A streamed choice's text with tools offered, fed in the pieces a detokenizer gives: under "auto"
 * content goes out at once until a call may begin, a marker's prefix is held until it is known not
 * to be one, and the held call is parsed at the end (or given back as content when it is no call);
 * under a forced choice the call's head goes out once its name is written and the arguments as
 * they come, never the call's closing.
 */
class ToolCallStreamTest {

    /** What the stream sent, one line per piece. */
    static final class Recorded implements ToolCallStream.Sink {
        final List<String> pieces = new ArrayList<>();

        @Override
        public void content(String text) {
            pieces.add("content " + text);
        }

        @Override
        public void callHead(int callIndex, String id, String name) {
            assertTrue(id.matches("call_[0-9a-f]{24}"), id);
            pieces.add("head " + callIndex + " " + name);
        }

        @Override
        public void callArguments(int callIndex, String fragment) {
            pieces.add("arguments " + callIndex + " " + fragment);
        }
    }

    @Test
    void contentGoesOutUntilTheCallAndTheCallIsReadAtTheEnd() {
        Recorded r = new Recorded();
        ToolCallStream s = new ToolCallStream(ToolCallFormat.HERMES, false, r);
        s.push("Let me");
        s.push(" check. <tool");
        s.push("_call>\n{\"name\": \"f\", ");
        s.push("\"arguments\": {\"x\": 1}}\n</tool_call>");
        assertEquals(List.of("content Let me", "content  check. "), r.pieces);
        assertTrue(s.finish());
        assertEquals(List.of("content Let me", "content  check. ", "head 0 f", "arguments 0 {\"x\":1}"), r.pieces);
    }

    @Test
    void aHeldMarkerPrefixGoesOutOnceItIsNoMarker() {
        Recorded r = new Recorded();
        ToolCallStream s = new ToolCallStream(ToolCallFormat.HERMES, false, r);
        s.push("a <to");
        s.push("mato");
        assertFalse(s.finish());
        assertEquals(List.of("content a ", "content <tomato"), r.pieces);
    }

    @Test
    void aMalformedHeldCallEndsAsContent() {
        Recorded r = new Recorded();
        ToolCallStream s = new ToolCallStream(ToolCallFormat.LLAMA3_JSON, false, r);
        s.push("{\"name\": \"f\", \"parameters\": ");
        assertEquals(List.of(), r.pieces);
        assertFalse(s.finish());
        assertEquals(List.of("content {\"name\": \"f\", \"parameters\": "), r.pieces);
    }

    @Test
    void aForcedCallStreamsItsArgumentsAsTheyAreWritten() {
        Recorded r = new Recorded();
        ToolCallStream s = new ToolCallStream(ToolCallFormat.HERMES, true, r);
        s.push("<tool_call>\n{\"name\": \"get_");
        assertEquals(List.of(), r.pieces, "no head before the name is complete");
        s.push("weather\", \"arguments\": {\"ci");
        assertEquals(List.of("head 0 get_weather"), r.pieces);
        s.push("ty\": \"Oslo\", \"unit\": \"c\"");
        // Held back: as many characters as the call's closing "}\n</tool_call>" has.
        assertEquals(List.of("head 0 get_weather", "arguments 0 {\"city\": \"Oslo"), r.pieces);
        s.push("}}\n</tool_call>");
        assertTrue(s.finish());
        assertEquals(List.of("head 0 get_weather", "arguments 0 {\"city\": \"Oslo",
                "arguments 0 \", \"unit\": \"c\"}"), r.pieces);
    }

    @Test
    void aForcedCallCutShortSendsWhatItHas() {
        Recorded r = new Recorded();
        ToolCallStream s = new ToolCallStream(ToolCallFormat.MISTRAL, true, r);
        s.push("[{\"name\":\"f\",\"arguments\":{\"a\": [1, 2");
        assertFalse(s.finish());
        // The last two characters were held as a possible "}]"; the end sends them.
        assertEquals(List.of("head 0 f", "arguments 0 {\"a\": [1,", "arguments 0  2"), r.pieces);
    }
}
