package ai.kiln.server;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * A checked {@code POST /v1/completions} body.
 *
 * @param model        the model name the client asked for
 * @param prompts      one entry per prompt (a string, a list of strings, token ids or lists of token ids)
 * @param params       sampling and stopping, as the engine takes them
 * @param echo         put the prompt before each completion's text
 * @param logprobs     null: none; k: the chosen token's log-probability and the k most likely
 * @param stream       answer as server-sent events
 * @param includeUsage with {@code stream}: a last chunk carrying {@code usage}
 * @param user         the caller's end-user id, logged only
 */
record CompletionRequest(String model, List<Prompt> prompts, SamplingParams params, boolean echo, Integer logprobs,
        boolean stream, boolean includeUsage, String user) {

    /** The most prompts one request may carry. */
    static final int MAX_PROMPTS = 256;

    /** A prompt as text or as token ids (exactly one is non-null). */
    record Prompt(String text, int[] tokenIds) {
    }

    static CompletionRequest parse(JsonNode json) {
        BodyFields body = new BodyFields(json);
        String model = body.requiredString("model");
        List<Prompt> prompts = prompts(body);
        if (body.has("suffix")) {
            throw ApiError.invalid("'suffix' is not supported.", "suffix", "unsupported_parameter");
        }
        boolean echo = Boolean.TRUE.equals(body.bool("echo"));
        boolean stream = Boolean.TRUE.equals(body.bool("stream"));
        boolean includeUsage = streamOptions(body, stream);
        SamplingParams params = SamplingJson.read(body, SamplingJson.Endpoint.COMPLETIONS);
        return new CompletionRequest(model, prompts, params, echo, params.logprobs(), stream, includeUsage,
                body.string("user"));
    }

    private static List<Prompt> prompts(BodyFields body) {
        JsonNode node = body.node("prompt");
        if (node == null) {
            throw ApiError.invalid("'prompt' is a required field.", "prompt", "missing_required_parameter");
        }
        List<Prompt> out = new ArrayList<>();
        if (node.isTextual()) {
            out.add(new Prompt(node.textValue(), null));
        } else if (node.isArray()) {
            if (node.isEmpty()) {
                throw ApiError.invalid("'prompt' must not be an empty array.", "prompt");
            }
            JsonNode first = node.get(0);
            if (first.isTextual()) {
                for (JsonNode item : node) {
                    if (!item.isTextual()) {
                        throw BodyFields.wrongType("prompt[" + out.size() + "]", "a string", item);
                    }
                    out.add(new Prompt(item.textValue(), null));
                }
            } else if (first.isNumber()) {
                out.add(new Prompt(null, tokenIds("prompt", node)));
            } else if (first.isArray()) {
                for (JsonNode item : node) {
                    if (!item.isArray()) {
                        throw BodyFields.wrongType("prompt[" + out.size() + "]", "an array of token ids", item);
                    }
                    if (item.isEmpty()) {
                        throw ApiError.invalid("'prompt[" + out.size() + "]' must not be empty.", "prompt");
                    }
                    out.add(new Prompt(null, tokenIds("prompt[" + out.size() + "]", item)));
                }
            } else {
                throw BodyFields.wrongType("prompt[0]", "a string, a token id or an array of token ids", first);
            }
        } else {
            throw BodyFields.wrongType("prompt",
                    "a string, an array of strings, an array of token ids or an array of arrays of token ids", node);
        }
        if (out.size() > MAX_PROMPTS) {
            throw ApiError.invalid("'prompt' holds at most " + MAX_PROMPTS + " prompts, got " + out.size() + ".", "prompt");
        }
        return out;
    }

    private static int[] tokenIds(String name, JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode item = array.get(i);
            ids[i] = BodyFields.toInt(name + "[" + i + "]", item);
            if (ids[i] < 0) {
                throw ApiError.invalid("'" + name + "[" + i + "]' must be a token id >= 0, got " + ids[i] + ".", "prompt");
            }
        }
        return ids;
    }

    /** Reads {@code stream_options}, which OpenAI allows only with {@code stream: true}. */
    static boolean streamOptions(BodyFields body, boolean stream) {
        ObjectNode options = body.object("stream_options");
        if (options == null) {
            return false;
        }
        if (!stream) {
            throw ApiError.invalid("'stream_options' is allowed only when 'stream' is true.", "stream_options");
        }
        Boolean include = new BodyFields(options).bool("include_usage");
        return Boolean.TRUE.equals(include);
    }

}
