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

    /** OpenAI's default for {@code max_tokens} on this endpoint. */
    static final int DEFAULT_MAX_TOKENS = 16;
    /** The most prompts one request may carry. */
    static final int MAX_PROMPTS = 256;
    static final int MAX_STOP = 16;

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
        rejectLogitBias(body);
        Integer n = body.integer("n");
        Integer bestOf = body.integer("best_of");
        if (bestOf != null && bestOf != (n == null ? 1 : n)) {
            throw ApiError.invalid("'best_of' other than n is not supported, got best_of=" + bestOf + ".", "best_of",
                    "unsupported_parameter");
        }
        Integer logprobs = body.integer("logprobs");
        if (logprobs != null && (logprobs < 0 || logprobs > SamplingParams.MAX_LOGPROBS)) {
            throw ApiError.invalid("'logprobs' must be in [0, " + SamplingParams.MAX_LOGPROBS + "], got " + logprobs + ".",
                    "logprobs");
        }
        boolean echo = Boolean.TRUE.equals(body.bool("echo"));
        boolean stream = Boolean.TRUE.equals(body.bool("stream"));
        boolean includeUsage = streamOptions(body, stream);
        Integer maxTokens = body.has("max_tokens") ? body.integer("max_tokens") : Integer.valueOf(DEFAULT_MAX_TOKENS);
        SamplingParams.Builder params = commonSampling(body, n, maxTokens);
        params.logprobs(logprobs);
        return new CompletionRequest(model, prompts, build(params), echo, logprobs, stream, includeUsage,
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

    static void rejectLogitBias(BodyFields body) {
        JsonNode bias = body.node("logit_bias");
        if (bias != null && !(bias.isObject() && bias.isEmpty())) {
            throw ApiError.invalid("'logit_bias' is not supported.", "logit_bias", "unsupported_parameter");
        }
    }

    /** The sampling fields both endpoints share, with Kiln's extensions top_k, min_p and repetition_penalty. */
    static SamplingParams.Builder commonSampling(BodyFields body, Integer n, Integer maxTokens) {
        SamplingParams.Builder b = SamplingParams.builder();
        if (n != null) {
            if (n < 1) {
                throw ApiError.invalid("'n' must be >= 1, got " + n + ".", "n");
            }
            b.n(n);
        }
        if (maxTokens != null && maxTokens < 1) {
            throw ApiError.invalid("'max_tokens' must be >= 1, got " + maxTokens + ".", "max_tokens");
        }
        b.maxTokens(maxTokens);
        Double temperature = body.number("temperature");
        if (temperature != null) {
            if (!(temperature >= 0) || temperature > 2) {
                throw ApiError.invalid("'temperature' must be in [0, 2], got " + temperature + ".", "temperature");
            }
            b.temperature(temperature);
        }
        Double topP = body.number("top_p");
        if (topP != null) {
            if (!(topP > 0 && topP <= 1)) {
                throw ApiError.invalid("'top_p' must be in (0, 1], got " + topP + ".", "top_p");
            }
            b.topP(topP);
        }
        Integer topK = body.integer("top_k");
        if (topK != null) {
            b.topK(topK);
        }
        Double minP = body.number("min_p");
        if (minP != null) {
            b.minP(minP);
        }
        Double repetition = body.number("repetition_penalty");
        if (repetition != null) {
            b.repetitionPenalty(repetition);
        }
        Double presence = body.number("presence_penalty");
        if (presence != null) {
            b.presencePenalty(presence);
        }
        Double frequency = body.number("frequency_penalty");
        if (frequency != null) {
            b.frequencyPenalty(frequency);
        }
        Long seed = body.longValue("seed");
        if (seed != null) {
            b.seed(seed);
        }
        List<String> stop = body.stringOrStrings("stop", MAX_STOP);
        for (int i = 0; i < stop.size(); i++) {
            if (stop.get(i).isEmpty()) {
                throw ApiError.invalid("'stop' strings must not be empty.", "stop");
            }
        }
        b.stop(stop);
        // vLLM's extensions.
        Boolean ignoreEos = body.bool("ignore_eos");
        if (ignoreEos != null) {
            b.ignoreEos(ignoreEos);
        }
        Integer minTokens = body.integer("min_tokens");
        if (minTokens != null) {
            b.minTokens(minTokens);
        }
        JsonNode stopIds = body.node("stop_token_ids");
        if (stopIds != null) {
            if (!stopIds.isArray()) {
                throw BodyFields.wrongType("stop_token_ids", "an array of token ids", stopIds);
            }
            List<Integer> ids = new ArrayList<>();
            for (JsonNode id : stopIds) {
                ids.add(BodyFields.toInt("stop_token_ids[" + ids.size() + "]", id));
            }
            b.stopTokenIds(ids);
        }
        Boolean skipSpecial = body.bool("skip_special_tokens");
        if (skipSpecial != null) {
            b.skipSpecialTokens(skipSpecial);
        }
        Boolean includeStop = body.bool("include_stop_str_in_output");
        if (includeStop != null) {
            b.includeStopStrInOutput(includeStop);
        }
        return b;
    }

    /** Builds the engine's parameters; its checks (named by field) become 400s. */
    static SamplingParams build(SamplingParams.Builder params) {
        try {
            return params.build();
        } catch (IllegalArgumentException e) {
            String message = e.getMessage() == null ? "invalid sampling parameters" : e.getMessage();
            int space = message.indexOf(' ');
            String field = space > 0 ? message.substring(0, space).replace(":", "") : null;
            throw ApiError.invalid(message + ".", field);
        }
    }
}
