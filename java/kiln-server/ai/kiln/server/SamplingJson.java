package ai.kiln.server;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Reads the sampling fields of an OpenAI-style JSON request into {@link SamplingParams}: the one
 * reader of the server's two generation endpoints and of {@code kiln generate --input}'s lines, so
 * that a field has one name, one check and one message wherever Kiln takes it.
 *
 * <p>The fields are OpenAI's (n, max_tokens, temperature, top_p, presence_penalty,
 * frequency_penalty, seed, stop, logprobs), with vLLM's extensions (top_k, min_p,
 * repetition_penalty, min_tokens, stop_token_ids, ignore_eos, skip_special_tokens,
 * include_stop_str_in_output), OpenAI's logit_bias and the structured-output fields ({@link StructuredOutputJson}:
 * response_format and vLLM's guided_* and structured_outputs). The two endpoints differ only where OpenAI's do, which {@link
 * Endpoint} names. A field absent or null keeps its value in the defaults given; a value of the
 * wrong type or out of range is refused with a message naming the field.
 */
public final class SamplingJson {

    /** The most stop strings one request may give (OpenAI allows 4). */
    public static final int MAX_STOP = 16;

    /** Where OpenAI's two generation endpoints ask for sampling differently. */
    public enum Endpoint {
        /**
         * {@code /v1/completions}: {@code max_tokens} (16 by default, as OpenAI's), {@code logprobs}
         * as the number of alternatives per token, and {@code best_of} only equal to {@code n}.
         */
        COMPLETIONS(16, Set.of("max_tokens", "logprobs", "best_of")),
        /**
         * {@code /v1/chat/completions}: {@code max_completion_tokens}, else the older {@code
         * max_tokens} (by default none: up to the context), and {@code logprobs} as a boolean with
         * {@code top_logprobs} alternatives per token.
         */
        CHAT(null, Set.of("max_completion_tokens", "max_tokens", "logprobs", "top_logprobs"));

        private static final Set<String> COMMON = Set.of("n", "temperature", "top_p", "top_k", "min_p",
                "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop", "ignore_eos",
                "min_tokens", "stop_token_ids", "skip_special_tokens", "include_stop_str_in_output", "response_format",
                "guided_json", "guided_regex", "guided_choice", "guided_grammar", "guided_whitespace_pattern",
                "guided_decoding_backend", "structured_outputs", "logit_bias");

        private final Integer defaultMaxTokens;
        private final Set<String> ownFields;

        Endpoint(Integer defaultMaxTokens, Set<String> ownFields) {
            this.defaultMaxTokens = defaultMaxTokens;
            this.ownFields = ownFields;
        }

        /** What a request that gives no sampling field gets at this endpoint. */
        public SamplingParams defaults() {
            return SamplingParams.builder().maxTokens(defaultMaxTokens).build();
        }

        /** The names of the fields read at this endpoint, in alphabetical order. */
        public SortedSet<String> fields() {
            SortedSet<String> all = new TreeSet<>(COMMON);
            all.addAll(ownFields);
            return Collections.unmodifiableSortedSet(all);
        }
    }

    private SamplingJson() {
    }

    /**
     * The sampling parameters of {@code body} (a JSON object) as {@code endpoint} reads them, over
     * {@code defaults}. Throws an IllegalArgumentException whose message is the one the server
     * answers the same body with.
     */
    public static SamplingParams read(JsonNode body, Endpoint endpoint, SamplingParams defaults) {
        try {
            return read(new BodyFields(body), endpoint, defaults);
        } catch (ApiError e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** The server's reading of a request to {@code endpoint}: over the endpoint's defaults; a refusal is a 400 naming the field. */
    static SamplingParams read(BodyFields body, Endpoint endpoint) {
        return read(body, endpoint, endpoint.defaults());
    }

    /** As {@link #read(JsonNode, Endpoint, SamplingParams)}: a refusal is a 400 naming the field. */
    static SamplingParams read(BodyFields body, Endpoint endpoint, SamplingParams defaults) {
        SamplingParams.Builder b = defaults.toBuilder();
        Integer n = body.integer("n");
        Integer maxTokens;
        if (endpoint == Endpoint.COMPLETIONS) {
            Integer bestOf = body.integer("best_of");
            if (bestOf != null && bestOf != (n == null ? defaults.n() : n)) {
                throw ApiError.invalid("'best_of' other than n is not supported, got best_of=" + bestOf + ".",
                        "best_of", "unsupported_parameter");
            }
            readCompletionsLogprobs(body, b);
            maxTokens = body.has("max_tokens") ? body.integer("max_tokens") : defaults.maxTokens();
        } else {
            maxTokens = body.integer("max_completion_tokens");
            Integer legacyMax = body.integer("max_tokens");
            if (maxTokens == null) {
                maxTokens = legacyMax != null ? legacyMax : defaults.maxTokens();
            } else if (maxTokens < 1) {
                throw ApiError.invalid("'max_completion_tokens' must be >= 1, got " + maxTokens + ".",
                        "max_completion_tokens");
            }
            readChatLogprobs(body, b);
        }
        if (n != null) {
            if (n < 1) {
                throw ApiError.invalid("'n' must be >= 1, got " + n + ".", "n");
            }
            b.n(n);
        }
        // NOTE: a limit from max_completion_tokens was checked above, under its own name.
        if (maxTokens != null && maxTokens < 1) {
            throw ApiError.invalid("'max_tokens' must be >= 1, got " + maxTokens + ".", "max_tokens");
        }
        b.maxTokens(maxTokens);
        readCommon(body, b);
        return build(b);
    }

    /** {@code logprobs}: null, or how many alternatives per token besides the chosen one. */
    private static void readCompletionsLogprobs(BodyFields body, SamplingParams.Builder b) {
        Integer logprobs = body.integer("logprobs");
        if (logprobs == null) {
            return;
        }
        if (logprobs < 0 || logprobs > SamplingParams.MAX_LOGPROBS) {
            throw ApiError.invalid("'logprobs' must be in [0, " + SamplingParams.MAX_LOGPROBS + "], got " + logprobs
                    + ".", "logprobs");
        }
        b.logprobs(logprobs);
    }

    /** {@code logprobs}: whether to return them; {@code top_logprobs}: how many alternatives, with logprobs. */
    private static void readChatLogprobs(BodyFields body, SamplingParams.Builder b) {
        Boolean given = body.bool("logprobs");
        boolean logprobs = Boolean.TRUE.equals(given);
        Integer topLogprobs = body.integer("top_logprobs");
        if (topLogprobs != null) {
            if (topLogprobs < 0 || topLogprobs > SamplingParams.MAX_LOGPROBS) {
                throw ApiError.invalid("'top_logprobs' must be in [0, " + SamplingParams.MAX_LOGPROBS + "], got "
                        + topLogprobs + ".", "top_logprobs");
            }
            if (!logprobs && topLogprobs > 0) {
                throw ApiError.invalid("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs");
            }
        }
        if (given != null) {
            b.logprobs(logprobs ? (topLogprobs == null ? 0 : topLogprobs) : null);
        }
    }

    /** The fields both endpoints read alike. */
    private static void readCommon(BodyFields body, SamplingParams.Builder b) {
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
        if (body.has("stop")) {
            List<String> stop = body.stringOrStrings("stop", MAX_STOP);
            for (String s : stop) {
                if (s.isEmpty()) {
                    throw ApiError.invalid("'stop' strings must not be empty.", "stop");
                }
            }
            b.stop(stop);
        }
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
        JsonNode bias = body.node("logit_bias");
        if (bias != null) {
            b.logitBias(logitBias(bias));
        }
        if (StructuredOutputJson.FIELDS.stream().anyMatch(body::has)) {
            b.structuredOutput(StructuredOutputJson.read(body));
        }
    }

    /** OpenAI's {@code logit_bias}: an object from token ids (as strings) to biases in [-100, 100]. */
    private static Map<Integer, Double> logitBias(JsonNode bias) {
        if (!bias.isObject()) {
            throw BodyFields.wrongType("logit_bias", "an object from token ids to biases", bias);
        }
        Map<Integer, Double> out = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = bias.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException notAnId) {
                id = -1;
            }
            if (id < 0 || !e.getKey().matches("\\d+")) {
                throw ApiError.invalid("'logit_bias' keys must be token ids (integers >= 0), got '" + e.getKey() + "'.",
                        "logit_bias");
            }
            JsonNode value = e.getValue();
            if (!value.isNumber()) {
                throw BodyFields.wrongType("logit_bias." + e.getKey(), "a number", value);
            }
            double v = value.doubleValue();
            if (!(Math.abs(v) <= SamplingParams.MAX_LOGIT_BIAS)) {
                throw ApiError.invalid("'logit_bias' values must be in [-100, 100], got " + value + " for token " + id
                        + ".", "logit_bias");
            }
            out.put(id, v);
        }
        return out;
    }

    /** Builds the engine's parameters; its checks (whose messages start with the field's name) become 400s. */
    private static SamplingParams build(SamplingParams.Builder params) {
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
