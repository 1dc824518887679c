package ai.kiln.server;

import ai.kiln.grammar.GrammarException;
import ai.kiln.grammar.Grammars;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A chat request's {@code tools} and {@code tool_choice}, checked. OpenAI function tools only:
 * {@code {"type": "function", "function": {"name", "description", "parameters", "strict"}}}.
 *
 * @param tools  the tools offered, in the request's order; empty when none were given
 * @param choice none, auto, required, or a named function
 * @param named  with {@link Choice#NAMED}: the function the model must call
 */
record ChatTools(List<Tool> tools, Choice choice, String named) {

    /** What tool_choice asks for. */
    enum Choice {
        /** The model may not call a tool: none are shown to it, its output is content. */
        NONE,
        /** The model may call tools; calls in its output are read out. */
        AUTO,
        /** The model must call one of the tools (enforced by a grammar). */
        REQUIRED,
        /** The model must call {@link #named} (enforced by a grammar). */
        NAMED
    }

    /**
     * One function tool.
     *
     * @param name        its name, as OpenAI allows: letters, digits, "_" and "-", at most 64
     * @param description what it does, for the model; null when not given
     * @param parameters  the JSON schema of its arguments; null when not given (no arguments)
     */
    record Tool(String name, String description, JsonNode parameters) {

        /** The schema the arguments are written under: an object without members when none is given. */
        JsonNode parametersForGrammar() {
            if (parameters != null) {
                return parameters;
            }
            ObjectNode empty = JSON.createObjectNode();
            empty.put("type", "object");
            empty.putObject("properties");
            empty.put("additionalProperties", false);
            return empty;
        }

        /** The tool as Hugging Face's apply_chat_template takes it: {"type": "function", "function": {...}}. */
        Map<String, Object> templateValue() {
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", name);
            if (description != null) {
                function.put("description", description);
            }
            if (parameters != null) {
                function.put("parameters", JSON.convertValue(parameters, Object.class));
            }
            Map<String, Object> tool = new LinkedHashMap<>();
            tool.put("type", "function");
            tool.put("function", function);
            return tool;
        }
    }

    static final ChatTools NO_TOOLS = new ChatTools(List.of(), Choice.NONE, null);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    /** Whether the output is read for calls. */
    boolean parsesCalls() {
        return choice != Choice.NONE && !tools.isEmpty();
    }

    /** Whether a grammar makes the output exactly one call. */
    boolean forced() {
        return choice == Choice.REQUIRED || choice == Choice.NAMED;
    }

    /** The tools a forced call may use: all for required, the named one for a named choice. */
    List<Tool> callable() {
        if (choice == Choice.NAMED) {
            return tools.stream().filter(t -> t.name().equals(named)).toList();
        }
        return tools;
    }

    /**
     * The chat template's further variables, as apply_chat_template(..., tools=...) passes them:
     * {@code tools} when the model is shown tools, nothing otherwise (the template sees it undefined).
     */
    Map<String, Object> templateVariables() {
        List<Map<String, Object>> shown = templateTools();
        return shown == null ? Map.of() : Map.of("tools", shown);
    }

    /** The template's {@code tools} variable; null when the model is shown none. */
    List<Map<String, Object>> templateTools() {
        if (!parsesCalls()) {
            return null;
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (Tool t : tools) {
            out.add(t.templateValue());
        }
        return out;
    }

    static ChatTools read(BodyFields body) {
        List<Tool> tools = tools(body.node("tools"));
        JsonNode choiceNode = body.node("tool_choice");
        Choice choice = tools.isEmpty() ? Choice.NONE : Choice.AUTO;
        String named = null;
        if (choiceNode != null) {
            if (choiceNode.isTextual()) {
                choice = switch (choiceNode.textValue()) {
                    case "none" -> Choice.NONE;
                    case "auto" -> Choice.AUTO;
                    case "required" -> Choice.REQUIRED;
                    default -> throw ApiError.invalid("'tool_choice' must be 'none', 'auto', 'required' or"
                            + " {\"type\": \"function\", \"function\": {\"name\": ...}}, got '" + choiceNode.textValue()
                            + "'.", "tool_choice");
                };
            } else if (choiceNode.isObject()) {
                BodyFields fields = new BodyFields(choiceNode);
                String type = fields.string("type");
                JsonNode function = fields.node("function");
                if (!"function".equals(type) || function == null || !function.isObject()
                        || !function.path("name").isTextual()) {
                    throw ApiError.invalid("'tool_choice' as an object must be {\"type\": \"function\", \"function\":"
                            + " {\"name\": ...}}.", "tool_choice");
                }
                choice = Choice.NAMED;
                named = function.get("name").textValue();
            } else {
                throw BodyFields.wrongType("tool_choice", "a string or an object", choiceNode);
            }
            if (choice != Choice.NONE && tools.isEmpty()) {
                throw ApiError.invalid("'tool_choice' " + choiceNode + " needs 'tools'.", "tool_choice");
            }
            if (choice == Choice.NAMED) {
                String wanted = named;
                if (tools.stream().noneMatch(t -> t.name().equals(wanted))) {
                    throw ApiError.invalid("'tool_choice' names the function '" + named + "', which is not among"
                            + " 'tools'.", "tool_choice");
                }
            }
        }
        return new ChatTools(tools, choice, named);
    }

    private static List<Tool> tools(JsonNode node) {
        if (node == null) {
            return List.of();
        }
        if (!node.isArray()) {
            throw BodyFields.wrongType("tools", "an array of tools", node);
        }
        List<Tool> tools = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < node.size(); i++) {
            String where = "tools[" + i + "]";
            JsonNode item = node.get(i);
            if (!item.isObject()) {
                throw BodyFields.wrongType(where, "an object", item);
            }
            BodyFields tool = new BodyFields(item);
            String type = tool.requiredString("type");
            if (!type.equals("function")) {
                throw ApiError.invalid("'" + where + ".type' must be 'function', got '" + type + "'.", where + ".type");
            }
            JsonNode function = tool.node("function");
            if (function == null) {
                throw ApiError.invalid("'" + where + ".function' is a required field.", where + ".function",
                        "missing_required_parameter");
            }
            if (!function.isObject()) {
                throw BodyFields.wrongType(where + ".function", "an object", function);
            }
            BodyFields f = new BodyFields(function);
            String name = f.string("name");
            if (name == null) {
                throw ApiError.invalid("'" + where + ".function.name' is a required field.", where + ".function.name",
                        "missing_required_parameter");
            }
            if (!NAME.matcher(name).matches()) {
                throw ApiError.invalid("'" + where + ".function.name' must be 1 to 64 letters, digits, '_' or '-', got '"
                        + name + "'.", where + ".function.name");
            }
            if (!names.add(name)) {
                throw ApiError.invalid("'" + where + ".function.name' '" + name + "' is given twice.",
                        where + ".function.name");
            }
            String description = f.string("description");
            f.bool("strict"); // type-checked; the grammar of a forced call is strict in any case
            JsonNode parameters = f.node("parameters");
            if (parameters != null && !parameters.isObject()) {
                throw BodyFields.wrongType(where + ".function.parameters", "a JSON schema object", parameters);
            }
            tools.add(new Tool(name, description, parameters));
        }
        return tools;
    }

    /**
     * Compiles the callable tools' parameter schemas, so that a forced call whose schema the
     * grammar cannot express is a 400 naming the tool and the problem.
     */
    void checkForcedSchemas() {
        if (!forced()) {
            return;
        }
        for (int i = 0; i < tools.size(); i++) {
            Tool t = tools.get(i);
            if (!callable().contains(t)) {
                continue;
            }
            try {
                Grammars.jsonSchema(t.parametersForGrammar().toString());
            } catch (GrammarException e) {
                throw ApiError.invalid("'tools[" + i + "].function.parameters' cannot be enforced for tool_choice "
                        + (choice == Choice.NAMED ? "'" + named + "'" : "'required'") + ": " + e.getMessage() + ".",
                        "tools[" + i + "].function.parameters");
            }
        }
    }
}
