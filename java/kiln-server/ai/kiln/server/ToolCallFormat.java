package ai.kiln.server;

import ai.kiln.api.StructuredOutput;
import java.util.ArrayList;
import java.util.List;

/**
 * How a model family writes tool calls in its output, named as vLLM's {@code --tool-call-parser}
 * names them: reading calls out of generated text, and the constraint that makes the model write
 * exactly one call (tool_choice "required" or a named function).
 *
 * <ul>
 *   <li>{@code hermes} (Hermes, Qwen 2.5 / 3): {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>},
 *       possibly several, after optional text.
 *   <li>{@code llama3_json} (Llama 3.1 / 3.2 / 3.3): the whole output is {@code {"name": ..., "parameters": {...}}},
 *       optionally after {@code <|python_tag|>}, several separated by ";".
 *   <li>{@code mistral}: {@code [TOOL_CALLS]} then a JSON array of {@code {"name": ..., "arguments": {...}}}.
 * </ul>
 *
 * <p>Text that does not hold well-formed calls in the format is left as content: a model's
 * malformed attempt is the client's to see, not an error.
 */
enum ToolCallFormat {
    HERMES("hermes"),
    LLAMA3_JSON("llama3_json"),
    MISTRAL("mistral");


    /** One call read from the output: arguments as JSON text, as OpenAI's function.arguments. */
    record ToolCall(String id, String name, String arguments) {
    }

    /**
     * What an output says: its content (null when only calls) and its calls (empty: none were
     * found, or they were malformed and the whole text is content).
     */
    record Parsed(String content, List<ToolCall> calls) {
    }

    private final String flagName;

    ToolCallFormat(String flagName) {
        this.flagName = flagName;
    }

    String flagName() {
        return flagName;
    }

    /** The key holding a call's arguments in this format ("arguments", or Llama's "parameters"). */
    String argumentsKey() {
        return shared().argumentsKey();
    }

    /** The format of a {@code --tool-call-parser} value. */
    static ToolCallFormat ofFlag(String name) {
        for (ToolCallFormat f : values()) {
            if (f.flagName.equals(name)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unknown tool-call parser '" + name + "'; known: hermes, llama3_json, mistral");
    }

    /**
     * The format a chat template writes its tool calls in, from the markers it names; hermes (the
     * commonest among open models) when the template names none.
     */
    static ToolCallFormat ofTemplate(String template) {
        return valueOf(ai.kiln.api.ToolCallFormat.ofTemplate(template).name());
    }

    /**
     * The position in {@code text} from which it may be (the start of) a call: the marker or a
     * prefix of it at the end, or for llama3_json a "{" opening the output; -1 while it cannot.
     * Streaming holds text back from here.
     */
    int callStart(String text) {
        return shared().callStart(text);
    }

    /** Reads the calls of a free (tool_choice "auto") output (kiln-core's reader, shared with the integrations). */
    Parsed parse(String text) {
        return read(text, false);
    }

    /**
     * Reads the call of an output made under {@link #forcedCall}: for mistral the grammar cannot
     * write {@code [TOOL_CALLS]} (a control token, never a constrained token), so the array stands alone.
     */
    Parsed parseForced(String text) {
        return read(text, true);
    }

    private Parsed read(String text, boolean forced) {
        ai.kiln.api.ToolCallFormat.Parsed parsed = shared().parse(text, forced);
        List<ToolCall> calls = new ArrayList<>();
        for (ai.kiln.api.ToolCallFormat.ToolCall call : parsed.calls()) {
            calls.add(new ToolCall(call.id(), call.name(), call.arguments()));
        }
        return new Parsed(parsed.text(), calls);
    }

    /**
     * The constraint under which the output is exactly one call of one of {@code tools} in this
     * format: the name one of theirs, the arguments their parameters' schema (kiln-core's grammar,
     * shared with the integrations).
     */
    StructuredOutput forcedCall(List<ChatTools.Tool> tools) {
        List<ai.kiln.api.ToolCallFormat.Tool> shared = new ArrayList<>(tools.size());
        for (ChatTools.Tool tool : tools) {
            shared.add(new ai.kiln.api.ToolCallFormat.Tool(tool.name(), tool.description(),
                    tool.parameters() == null ? null : tool.parameters().toString()));
        }
        return shared().forcedCall(shared);
    }

    /** What a forced call's grammar writes before the call's JSON. */
    String forcedOpen() {
        return shared().forcedOpen();
    }

    /** What a forced call's grammar writes after the call's JSON. */
    String forcedClose() {
        return shared().forcedClose();
    }

    /** The same format in kiln-core, which reads calls and writes forced ones for every caller. */
    private ai.kiln.api.ToolCallFormat shared() {
        return ai.kiln.api.ToolCallFormat.valueOf(name());
    }
}
