package ai.kiln.server;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One streamed choice's text when the request offered tools, turned into what goes out: content,
 * and calls as OpenAI streams them (a call's id and name first, then its arguments in fragments).
 *
 * <p>Under tool_choice "auto" content goes out at once until the text may start a call; from there
 * it is held and parsed when the choice ends. Under a forced choice the grammar fixes the text's
 * shape (the format's opening, {@code {"name": "NAME", "KEY": ARGUMENTS}}, its closing), so the
 * call's head goes out as soon as the name is complete and the arguments as they are written,
 * less the last characters, which may be the call's closing.
 */
final class ToolCallStream {

    /** Where the pieces go. */
    interface Sink {
        void content(String text);

        void callHead(int callIndex, String id, String name);

        void callArguments(int callIndex, String fragment);
    }

    private final ToolCallFormat format;
    private final boolean forced;
    private final Sink sink;
    private final StringBuilder text = new StringBuilder();
    private final Pattern forcedHead;
    private final String forcedTail;
    /** Characters of the text handled: sent as content, or (forced) the head and the arguments sent. */
    private int sent;
    /** Forced: where the arguments start, once the head went out; -1 before. */
    private int argumentsStart = -1;

    ToolCallStream(ToolCallFormat format, boolean forced, Sink sink) {
        this.format = format;
        this.forced = forced;
        this.sink = sink;
        this.forcedHead = Pattern.compile(Pattern.quote(format.forcedOpen()) + "\\{\"name\": ?\"([A-Za-z0-9_-]+)\", ?\""
                + format.argumentsKey() + "\": ?");
        this.forcedTail = "}" + format.forcedClose();
    }

    /** Takes the choice's next text and sends what may go out now. */
    void push(String next) {
        text.append(next);
        if (forced) {
            pushForced();
            return;
        }
        int start = format.callStart(text.toString());
        int upTo = start < 0 ? text.length() : start;
        if (upTo > sent) {
            sink.content(text.substring(sent, upTo));
            sent = upTo;
        }
    }

    private void pushForced() {
        if (argumentsStart < 0) {
            Matcher head = forcedHead.matcher(text);
            if (!head.lookingAt()) {
                return;
            }
            sink.callHead(0, ai.kiln.api.ToolCallFormat.newCallId(), head.group(1));
            argumentsStart = head.end();
            sent = argumentsStart;
        }
        int upTo = text.length() - forcedTail.length();
        if (upTo > sent) {
            sink.callArguments(0, text.substring(sent, upTo));
            sent = upTo;
        }
    }

    /** At the choice's end: sends what is left; returns whether the choice made calls. */
    boolean finish() {
        String held = text.substring(sent);
        sent = text.length();
        if (forced && argumentsStart >= 0) {
            // A complete call ends with the closing; one cut short sends what it has.
            String rest = held.endsWith(forcedTail) ? held.substring(0, held.length() - forcedTail.length()) : held;
            if (!rest.isEmpty()) {
                sink.callArguments(0, rest);
            }
            return held.endsWith(forcedTail);
        }
        if (held.isEmpty()) {
            return false;
        }
        ToolCallFormat.Parsed parsed = forced ? format.parseForced(held) : format.parse(held);
        if (parsed.content() != null && !parsed.content().isEmpty()) {
            sink.content(parsed.content());
        }
        List<ToolCallFormat.ToolCall> calls = parsed.calls();
        for (int k = 0; k < calls.size(); k++) {
            sink.callHead(k, calls.get(k).id(), calls.get(k).name());
            sink.callArguments(k, calls.get(k).arguments());
        }
        return !calls.isEmpty();
    }
}
