package ai.kiln.server;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checked {@code POST /v1/chat/completions} body.
 *
 * @param model        the model name the client asked for
 * @param messages     the conversation as the chat template takes it: role, content (text), name, an
 *                     assistant's tool_calls (arguments as objects, as Hugging Face templates read
 *                     them) and a tool message's tool_call_id
 * @param params       sampling and stopping, as the engine takes them
 * @param logprobs     whether each choice carries the chosen tokens' log-probabilities
 * @param topLogprobs  how many alternatives per position, with {@code logprobs}
 * @param stream       answer as server-sent events
 * @param includeUsage with {@code stream}: a last chunk carrying {@code usage}
 * @param user         the caller's end-user id, logged only
 * @param tools        the tools offered and tool_choice
 */
record ChatRequest(String model, List<Map<String, Object>> messages, SamplingParams params, boolean logprobs,
        int topLogprobs, boolean stream, boolean includeUsage, String user, ChatTools tools) {

    private static final ObjectMapper JSON = new ObjectMapper();

    static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    static ChatRequest parse(JsonNode json) {
        BodyFields body = new BodyFields(json);
        String model = body.requiredString("model");
        List<Map<String, Object>> messages = messages(body);
        ChatTools tools = ChatTools.read(body);
        if (body.has("functions")) {
            throw ApiError.invalid("'functions' is not supported; use 'tools'.", "functions", "unsupported_parameter");
        }
        body.bool("parallel_tool_calls"); // type-checked; calls are read as the model writes them
        boolean stream = Boolean.TRUE.equals(body.bool("stream"));
        boolean includeUsage = CompletionRequest.streamOptions(body, stream);
        SamplingParams params = SamplingJson.read(body, SamplingJson.Endpoint.CHAT);
        if (tools.forced()) {
            if (params.structuredOutput() != null) {
                throw ApiError.invalid("'tool_choice' " + body.node("tool_choice") + " constrains the output itself;"
                        + " it cannot be combined with a structured-output field.", "tool_choice");
            }
            tools.checkForcedSchemas();
        }
        boolean logprobs = params.logprobs() != null;
        return new ChatRequest(model, messages, params, logprobs, logprobs ? params.logprobs() : 0, stream,
                includeUsage, body.string("user"), tools);
    }

    private static List<Map<String, Object>> messages(BodyFields body) {
        JsonNode node = body.node("messages");
        if (node == null) {
            throw ApiError.invalid("'messages' is a required field.", "messages", "missing_required_parameter");
        }
        if (!node.isArray()) {
            throw BodyFields.wrongType("messages", "an array of messages", node);
        }
        if (node.isEmpty()) {
            throw ApiError.invalid("'messages' must hold at least one message.", "messages");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            String where = "messages[" + i + "]";
            JsonNode item = node.get(i);
            if (!item.isObject()) {
                throw BodyFields.wrongType(where, "an object", item);
            }
            BodyFields message = new BodyFields(item);
            String role = message.string("role");
            if (role == null) {
                throw ApiError.invalid("'" + where + ".role' is a required field.", where + ".role",
                        "missing_required_parameter");
            }
            if (!ROLES.contains(role)) {
                throw ApiError.invalid("'" + where + ".role' must be one of " + ROLES + ", got '" + role + "'.",
                        where + ".role");
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", role);
            JsonNode toolCalls = message.node("tool_calls");
            m.put("content", content(message.node("content"), where + ".content", role));
            String name = message.string("name");
            if (name != null) {
                m.put("name", name);
            }
            if (toolCalls != null) {
                if (!role.equals("assistant")) {
                    throw ApiError.invalid("'" + where + ".tool_calls' is only for assistant messages.",
                            where + ".tool_calls");
                }
                m.put("tool_calls", toolCalls(toolCalls, where + ".tool_calls"));
            }
            if (role.equals("tool")) {
                String callId = message.string("tool_call_id");
                if (callId == null) {
                    throw ApiError.invalid("'" + where + ".tool_call_id' is a required field.", where + ".tool_call_id",
                            "missing_required_parameter");
                }
                m.put("tool_call_id", callId);
            }
            out.add(m);
        }
        return out;
    }

    /**
     * An assistant's calls as Hugging Face templates read them: {"id", "type": "function",
     * "function": {"name", "arguments"}} with the arguments an object (OpenAI sends them as JSON
     * text; the Llama 3.1 and Qwen 2.5 templates print them with tojson, or iterate them).
     */
    private static List<Map<String, Object>> toolCalls(JsonNode node, String where) {
        if (!node.isArray()) {
            throw BodyFields.wrongType(where, "an array of tool calls", node);
        }
        List<Map<String, Object>> calls = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            String at = where + "[" + i + "]";
            JsonNode item = node.get(i);
            if (!item.isObject()) {
                throw BodyFields.wrongType(at, "an object", item);
            }
            BodyFields call = new BodyFields(item);
            String type = call.string("type");
            if (type != null && !type.equals("function")) {
                throw ApiError.invalid("'" + at + ".type' must be 'function', got '" + type + "'.", at + ".type");
            }
            JsonNode function = call.node("function");
            if (function == null || !function.isObject()) {
                throw ApiError.invalid("'" + at + ".function' must be an object with 'name' and 'arguments'.",
                        at + ".function");
            }
            BodyFields f = new BodyFields(function);
            String name = f.requiredString("name");
            Object arguments = Map.of();
            JsonNode args = f.node("arguments");
            if (args != null) {
                JsonNode parsed = args;
                if (args.isTextual()) {
                    try {
                        parsed = JSON.readTree(args.textValue());
                    } catch (JsonProcessingException e) {
                        throw ApiError.invalid("'" + at + ".function.arguments' is not valid JSON: "
                                + e.getOriginalMessage() + ".", at + ".function.arguments");
                    }
                }
                if (parsed == null || !parsed.isObject()) {
                    throw ApiError.invalid("'" + at + ".function.arguments' must be a JSON object.",
                            at + ".function.arguments");
                }
                arguments = JSON.convertValue(parsed, Object.class);
            }
            Map<String, Object> fn = new LinkedHashMap<>();
            fn.put("name", name);
            fn.put("arguments", arguments);
            Map<String, Object> c = new LinkedHashMap<>();
            String id = call.string("id");
            if (id != null) {
                c.put("id", id);
            }
            c.put("type", "function");
            c.put("function", fn);
            calls.add(c);
        }
        return calls;
    }

    /** A message's text: a string, or an array of {@code {"type": "text", "text": ...}} parts joined. */
    private static String content(JsonNode content, String where, String role) {
        if (content == null) {
            if (role.equals("assistant")) {
                return "";
            }
            throw ApiError.invalid("'" + where + "' is a required field.", where, "missing_required_parameter");
        }
        if (content.isTextual()) {
            return content.textValue();
        }
        if (!content.isArray()) {
            throw BodyFields.wrongType(where, "a string or an array of content parts", content);
        }
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < content.size(); i++) {
            JsonNode part = content.get(i);
            String partWhere = where + "[" + i + "]";
            if (!part.isObject()) {
                throw BodyFields.wrongType(partWhere, "a content part object", part);
            }
            BodyFields fields = new BodyFields(part);
            String type = fields.requiredString("type");
            if (!type.equals("text")) {
                throw ApiError.invalid("'" + partWhere + ".type' '" + type + "' is not supported; only 'text' parts are.",
                        partWhere + ".type", "unsupported_parameter");
            }
            String t = fields.string("text");
            if (t == null) {
                throw ApiError.invalid("'" + partWhere + ".text' is a required field.", partWhere + ".text",
                        "missing_required_parameter");
            }
            text.append(t);
        }
        return text.toString();
    }
}
