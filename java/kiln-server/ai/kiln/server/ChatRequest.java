package ai.kiln.server;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checked {@code POST /v1/chat/completions} body.
 *
 * @param model        the model name the client asked for
 * @param messages     the conversation as the chat template takes it: role, content (text) and name
 * @param params       sampling and stopping, as the engine takes them
 * @param logprobs     whether each choice carries the chosen tokens' log-probabilities
 * @param topLogprobs  how many alternatives per position, with {@code logprobs}
 * @param stream       answer as server-sent events
 * @param includeUsage with {@code stream}: a last chunk carrying {@code usage}
 * @param user         the caller's end-user id, logged only
 */
record ChatRequest(String model, List<Map<String, Object>> messages, SamplingParams params, boolean logprobs,
        int topLogprobs, boolean stream, boolean includeUsage, String user) {

    static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    static ChatRequest parse(JsonNode json) {
        BodyFields body = new BodyFields(json);
        String model = body.requiredString("model");
        List<Map<String, Object>> messages = messages(body);
        JsonNode tools = body.node("tools");
        if (tools != null && !(tools.isArray() && tools.isEmpty())) {
            throw ApiError.invalid("'tools' is not supported yet.", "tools", "unsupported_parameter");
        }
        if (body.has("functions")) {
            throw ApiError.invalid("'functions' is not supported.", "functions", "unsupported_parameter");
        }
        JsonNode toolChoice = body.node("tool_choice");
        if (toolChoice != null && !(toolChoice.isTextual() && toolChoice.textValue().equals("none"))) {
            throw ApiError.invalid("'tool_choice' is not supported yet.", "tool_choice", "unsupported_parameter");
        }
        boolean stream = Boolean.TRUE.equals(body.bool("stream"));
        boolean includeUsage = CompletionRequest.streamOptions(body, stream);
        SamplingParams params = SamplingJson.read(body, SamplingJson.Endpoint.CHAT);
        boolean logprobs = params.logprobs() != null;
        return new ChatRequest(model, messages, params, logprobs, logprobs ? params.logprobs() : 0, stream,
                includeUsage, body.string("user"));
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
            m.put("content", content(message.node("content"), where + ".content", role));
            String name = message.string("name");
            if (name != null) {
                m.put("name", name);
            }
            out.add(m);
        }
        return out;
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
