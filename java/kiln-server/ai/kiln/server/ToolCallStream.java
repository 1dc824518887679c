package ai.kiln.server;

/**
 * One streamed choice's text when the request offered tools: what may go out as content at once,
 * and what is held back because it may be (the start of) a tool call, to be parsed when the
 * choice ends. Under a forced tool_choice everything is a call and is held.
 */
final class ToolCallStream {
    private final ToolCallFormat format;
    private final boolean forced;
    private final StringBuilder text = new StringBuilder();
    private int sent;

    ToolCallStream(ToolCallFormat format, boolean forced) {
        this.format = format;
        this.forced = forced;
    }

    /** Takes the choice's next text; returns the part that goes out as content now (possibly empty). */
    String push(String next) {
        text.append(next);
        int start = forced ? 0 : format.callStart(text.toString());
        int upTo = start < 0 ? text.length() : start;
        if (upTo <= sent) {
            return "";
        }
        String content = text.substring(sent, upTo);
        sent = upTo;
        return content;
    }

    /** At the choice's end: the held text's calls, or the held text as content when it holds none. */
    ToolCallFormat.Parsed finish() {
        String held = text.substring(sent);
        sent = text.length();
        if (held.isEmpty()) {
            return new ToolCallFormat.Parsed(null, java.util.List.of());
        }
        return forced ? format.parseForced(held) : format.parse(held);
    }
}
