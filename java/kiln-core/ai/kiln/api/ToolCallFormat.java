package ai.kiln.api;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How a model writes tool calls, for in-process integrations, as Kiln's server reads them
 * (docs/api.md, "Tool calls"): the tools as the chat template's {@code tools} variable, the
 * constraint that makes the output exactly one call (tool_choice "required"), and the calls read
 * back out of the text. {@link #ofTemplate} picks the format the chat template's markers name,
 * as the server does without {@code --tool-call-parser}.
 */
public enum ToolCallFormat {
    /** Hermes, Qwen 2.5 / 3: {@code <tool_call>{"name", "arguments"}</tool_call>}, possibly several, after text. */
    HERMES("<tool_call>", "arguments", "<tool_call>\n", "\n</tool_call>"),
    /** Llama 3.1 to 3.3: the whole output is {@code {"name", "parameters"}}, several separated by ";". */
    LLAMA3_JSON("<|python_tag|>", "parameters", "", ""),
    /**
     * Mistral: {@code [TOOL_CALLS]} then an array of {@code {"name", "arguments"}}. The marker is
     * a control token, which a grammar cannot write, so a forced call is the array alone.
     */
    MISTRAL("[TOOL_CALLS]", "arguments", "[", "]");

    private static final Pattern HERMES_CALL = Pattern.compile("<tool_call>(.*?)(?:</tool_call>|$)", Pattern.DOTALL);

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * One function tool.
     *
     * @param name        its name
     * @param description what it does, for the model; null when not given
     * @param parameters  the JSON schema of its arguments, as JSON text; null when it takes none
     */
    public record Tool(String name, String description, String parameters) {
    }

    /** One call read from an output: its arguments as JSON text (an object), as OpenAI's function.arguments. */
    public record ToolCall(String id, String name, String arguments) {
    }

    /** What an output says: its text (null when only calls) and the calls found in it. */
    public record Parsed(String text, List<ToolCall> calls) {
    }

    private final String marker;
    private final String argumentsKey;
    private final String forcedOpen;
    private final String forcedClose;

    ToolCallFormat(String marker, String argumentsKey, String forcedOpen, String forcedClose) {
        this.marker = marker;
        this.argumentsKey = argumentsKey;
        this.forcedOpen = forcedOpen;
        this.forcedClose = forcedClose;
    }

    /** The format a chat template writes calls in, from its markers; hermes when it names none (as the server). */
    public static ToolCallFormat ofTemplate(String template) {
        if (template == null || template.contains("<tool_call>")) {
            return HERMES;
        }
        if (template.contains("[TOOL_CALLS]")) {
            return MISTRAL;
        }
        if (template.contains("<|python_tag|>") || template.contains("<|eom_id|>")
                || template.contains("<|start_header_id|>")) {
            return LLAMA3_JSON;
        }
        return HERMES;
    }

    /** The tools as Hugging Face's apply_chat_template(..., tools=...) passes them: the variable {@code tools}. */
    public static List<Map<String, Object>> templateTools(List<Tool> tools) {
        List<Map<String, Object>> out = new ArrayList<>(tools.size());
        for (Tool tool : tools) {
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", tool.name());
            if (tool.description() != null) {
                function.put("description", tool.description());
            }
            function.put("parameters", JSON.convertValue(parameters(tool), Object.class));
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("type", "function");
            entry.put("function", function);
            out.add(entry);
        }
        return out;
    }

    /**
     * The schema of a tool's arguments: its parameters', or an object without members for a tool
     * that takes none, so that the grammar writes {@code {}}.
     */
    private static JsonNode parameters(Tool tool) {
        if (tool.parameters() != null) {
            return readSchema(tool);
        }
        ObjectNode empty = JSON.createObjectNode();
        empty.put("type", "object");
        empty.putObject("properties");
        empty.put("additionalProperties", false);
        return empty;
    }

    private static JsonNode readSchema(Tool tool) {
        try {
            JsonNode schema = JSON.readTree(tool.parameters());
            if (schema != null && schema.isObject()) {
                return schema;
            }
        } catch (IOException e) {
            // reported below
        }
        throw new IllegalArgumentException("the parameters of tool '" + tool.name() + "' are not a JSON schema"
                + " object: " + tool.parameters());
    }

    /** The constraint under which the output is exactly one call of one of {@code tools}, in this format. */
    public StructuredOutput forcedCall(List<Tool> tools) {
        ArrayNode anyOf = JSON.createArrayNode();
        for (Tool tool : tools) {
            ObjectNode call = JSON.createObjectNode();
            call.put("type", "object");
            ObjectNode properties = call.putObject("properties");
            properties.putObject("name").put("const", tool.name());
            properties.set(argumentsKey, parameters(tool));
            call.putArray("required").add("name").add(argumentsKey);
            call.put("additionalProperties", false);
            anyOf.add(call);
        }
        JsonNode schema = anyOf.size() == 1 ? anyOf.get(0) : JSON.createObjectNode().set("anyOf", anyOf);
        return StructuredOutput.delimitedJsonSchema(forcedOpen, schema.toString(), forcedClose);
    }

    /** The text that opens a call in this format ({@code <tool_call>}, {@code <|python_tag|>}, {@code [TOOL_CALLS]}). */
    public String marker() {
        return marker;
    }

    /** The key holding a call's arguments ("arguments", or Llama's "parameters"). */
    public String argumentsKey() {
        return argumentsKey;
    }

    /** What a forced call's grammar writes before the call's JSON. */
    public String forcedOpen() {
        return forcedOpen;
    }

    /** What a forced call's grammar writes after the call's JSON. */
    public String forcedClose() {
        return forcedClose;
    }

    /**
     * The position in {@code text} from which it may be (the start of) a call: the marker or a
     * prefix of it at the end, or for llama3_json a "{" opening the output; -1 while it cannot.
     * A stream holds text back from here until the output ends.
     */
    public int callStart(String text) {
        int at = text.indexOf(marker);
        if (at >= 0) {
            return at;
        }
        if (this == LLAMA3_JSON) {
            int first = 0;
            while (first < text.length() && Character.isWhitespace(text.charAt(first))) {
                first++;
            }
            if (first < text.length() && text.charAt(first) == '{') {
                return first;
            }
            if (first == text.length()) {
                return -1;
            }
        }
        for (int k = Math.min(marker.length() - 1, text.length()); k > 0; k--) {
            if (text.endsWith(marker.substring(0, k))) {
                return text.length() - k;
            }
        }
        return -1;
    }

    /**
     * What of a streamed answer may be shown as text while it grows: the text before where a call
     * may begin ({@link #callStart}); none at all under a forced call. One per answer, fed the
     * whole answer so far each time; not thread-safe.
     */
    public HoldBack holdBack(boolean forced) {
        return new HoldBack(this, forced);
    }

    /** See {@link #holdBack}. */
    public static final class HoldBack {
        private final ToolCallFormat format;
        private final boolean forced;
        private int shown; // characters of the answer given out

        private HoldBack(ToolCallFormat format, boolean forced) {
            this.format = format;
            this.forced = forced;
        }

        /** The text of {@code answer} (all of it so far) that may now be shown and was not yet; "" for none. */
        public String take(String answer) {
            int start = forced ? 0 : format.callStart(answer);
            int limit = start < 0 ? answer.length() : start;
            if (limit <= shown) {
                return "";
            }
            String piece = answer.substring(shown, limit);
            shown = limit;
            return piece;
        }

        /** The rest of the finished {@code answer}, held back until now (its end, where it made no call). */
        public String takeRest(String answer) {
            String rest = answer.substring(Math.min(shown, answer.length()));
            shown = answer.length();
            return rest;
        }
    }

    /** Whether reading calls needs the special tokens in the text (Mistral's marker is one). */
    public boolean needsSpecialTokens() {
        return this == MISTRAL;
    }

    /**
     * Reads the calls of an output; text that is not well-formed calls in the format stays text,
     * unchanged, as the server leaves it content.
     *
     * @param forced whether the output was made under {@link #forcedCall} (Mistral's array then stands alone)
     */
    public Parsed parse(String text, boolean forced) {
        try {
            return switch (this) {
                case HERMES -> parseHermes(text);
                case LLAMA3_JSON -> parseLlama(text);
                case MISTRAL -> parseMistral(forced ? marker + text : text);
            };
        } catch (MalformedCall e) {
            return new Parsed(text, List.of());
        }
    }

    private Parsed parseHermes(String text) {
        Matcher m = HERMES_CALL.matcher(text);
        List<ToolCall> calls = new ArrayList<>();
        StringBuilder rest = new StringBuilder();
        int last = 0;
        while (m.find()) {
            rest.append(text, last, m.start());
            calls.add(call(readTree(m.group(1).trim())));
            last = m.end();
        }
        if (calls.isEmpty()) {
            return new Parsed(text, List.of());
        }
        rest.append(text.substring(last));
        return new Parsed(textOrNull(rest.toString()), calls);
    }

    private Parsed parseLlama(String text) {
        String body = text.strip();
        if (body.startsWith(marker)) {
            body = body.substring(marker.length()).strip();
        }
        if (!body.startsWith("{")) {
            return new Parsed(text, List.of());
        }
        List<ToolCall> calls = new ArrayList<>();
        int offset = 0;
        while (offset < body.length()) {
            JsonNode node;
            try (JsonParser one = JSON.getFactory().createParser(body.substring(offset))) {
                node = JSON.readTree(one);
                offset += (int) one.currentLocation().getCharOffset();
            } catch (IOException e) {
                throw new MalformedCall();
            }
            calls.add(call(node));
            offset = skipSpaces(body, offset);
            if (offset < body.length()) {
                if (body.charAt(offset) != ';') {
                    throw new MalformedCall();
                }
                offset = skipSpaces(body, offset + 1);
            }
        }
        return new Parsed(null, calls);
    }

    private Parsed parseMistral(String text) {
        int at = text.indexOf(marker);
        if (at < 0) {
            return new Parsed(text, List.of());
        }
        JsonNode array = readTree(text.substring(at + marker.length()).strip());
        if (!array.isArray() || array.isEmpty()) {
            throw new MalformedCall();
        }
        List<ToolCall> calls = new ArrayList<>();
        array.forEach(item -> calls.add(call(item)));
        return new Parsed(textOrNull(text.substring(0, at)), calls);
    }

    /** A call from {"name", "arguments" | "parameters"}; the arguments may also be JSON text. */
    private ToolCall call(JsonNode node) {
        if (node == null || !node.isObject() || !node.path("name").isTextual() || node.get("name").textValue().isEmpty()) {
            throw new MalformedCall();
        }
        JsonNode arguments = node.has(argumentsKey) ? node.get(argumentsKey)
                : node.has("arguments") ? node.get("arguments") : node.get("parameters");
        if (arguments == null || arguments.isNull()) {
            arguments = JSON.createObjectNode();
        }
        if (arguments.isTextual()) {
            arguments = readTree(arguments.textValue());
        }
        if (!arguments.isObject()) {
            throw new MalformedCall();
        }
        return new ToolCall(newCallId(), node.get("name").textValue(), arguments.toString());
    }

    private static JsonNode readTree(String text) {
        try {
            JsonNode node = JSON.readTree(text);
            if (node == null) {
                throw new MalformedCall();
            }
            return node;
        } catch (IOException e) {
            throw new MalformedCall();
        }
    }

    private static String textOrNull(String text) {
        String stripped = text.strip();
        return stripped.isEmpty() ? null : stripped;
    }

    private static int skipSpaces(String text, int from) {
        int i = from;
        while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
            i++;
        }
        return i;
    }

    /** OpenAI's form of a call id, as the server gives: "call_" and 24 letters and digits. */
    public static String newCallId() {
        return "call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24).toLowerCase(Locale.ROOT);
    }

    /** The text is not well-formed calls of the format; it stays text. */
    private static final class MalformedCall extends RuntimeException {
        private static final long serialVersionUID = 1L;

        MalformedCall() {
            super(null, null, false, false);
        }
    }
}
