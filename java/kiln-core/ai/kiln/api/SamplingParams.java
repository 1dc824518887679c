package ai.kiln.api;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * How one request chooses its tokens and when it stops, with vLLM's semantics. Build one with
 * {@link #builder()}; every field is checked here, with a message naming it.
 *
 * @param n                      completions generated from the prompt (they share its KV blocks)
 * @param temperature            0: greedy; otherwise logits are divided by it before sampling
 * @param topP                   nucleus sampling: keep the most likely tokens whose mass before them is below topP; 1: off
 * @param topK                   keep the topK most likely tokens; 0 or -1: off
 * @param minP                   drop tokens less likely than minP times the most likely one; 0: off
 * @param repetitionPenalty      > 1 discourages tokens already in the prompt or output (logit / p if positive, * p if not); 1: off
 * @param presencePenalty        subtracted from the logit of every token already generated; in [-2, 2]
 * @param frequencyPenalty       subtracted once per earlier occurrence in the output; in [-2, 2]
 * @param seed                   seeds this request's random choices (same seed, same output); null: the engine picks one
 * @param maxTokens              the most tokens to generate; null: up to the context length
 * @param minTokens              end-of-sequence and stop token ids are suppressed until this many tokens are generated
 * @param stop                   strings that end generation, matched on the detokenized text and cut from it
 * @param stopTokenIds           token ids that end generation (kept in the token ids, not in the text)
 * @param ignoreEos              keep generating past end-of-sequence tokens
 * @param logprobs               null: none; 0: the chosen token's log-probability; k: plus the k most likely tokens (at most 20)
 * @param includeStopStrInOutput keep a matched stop string in the text
 * @param skipSpecialTokens      leave special tokens out of the text
 * @param structuredOutput       what the output must be (a JSON schema, any JSON object, a regular
 *                               expression, a choice), or null for free text
 * @param logitBias              token id -> a bias in [-100, 100] added to its logit before sampling (OpenAI's logit_bias); empty: none
 */
public record SamplingParams(int n, double temperature, double topP, int topK, double minP,
        double repetitionPenalty, double presencePenalty, double frequencyPenalty, Long seed, Integer maxTokens,
        int minTokens, List<String> stop, List<Integer> stopTokenIds, boolean ignoreEos, Integer logprobs,
        boolean includeStopStrInOutput, boolean skipSpecialTokens, StructuredOutput structuredOutput,
        Map<Integer, Double> logitBias) {

    /** The most alternatives {@link #logprobs} may ask for. */
    public static final int MAX_LOGPROBS = 20;
    /** The most completions per request. */
    public static final int MAX_N = 128;
    /** Temperatures below this are greedy, as in vLLM. */
    public static final double GREEDY_EPSILON = 1e-5;
    /** The largest magnitude of a logit bias, as OpenAI's. */
    public static final double MAX_LOGIT_BIAS = 100;

    public SamplingParams {
        if (n < 1 || n > MAX_N) {
            throw invalid("n", "must be in [1, " + MAX_N + "]", n);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw invalid("temperature", "must be a finite number >= 0", temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw invalid("top_p", "must be in (0, 1]", topP);
        }
        if (topK < -1) {
            throw invalid("top_k", "must be -1 or 0 (off) or >= 1", topK);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw invalid("min_p", "must be in [0, 1]", minP);
        }
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
            throw invalid("repetition_penalty", "must be a finite number > 0", repetitionPenalty);
        }
        if (!(presencePenalty >= -2 && presencePenalty <= 2)) {
            throw invalid("presence_penalty", "must be in [-2, 2]", presencePenalty);
        }
        if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) {
            throw invalid("frequency_penalty", "must be in [-2, 2]", frequencyPenalty);
        }
        if (maxTokens != null && maxTokens < 1) {
            throw invalid("max_tokens", "must be >= 1", maxTokens);
        }
        if (minTokens < 0) {
            throw invalid("min_tokens", "must be >= 0", minTokens);
        }
        if (maxTokens != null && minTokens > maxTokens) {
            throw new IllegalArgumentException("min_tokens (" + minTokens + ") must be <= max_tokens (" + maxTokens + ")");
        }
        stop = List.copyOf(stop == null ? List.of() : stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop: stop strings must not be empty");
            }
        }
        stopTokenIds = List.copyOf(stopTokenIds == null ? List.of() : stopTokenIds);
        for (int id : stopTokenIds) {
            if (id < 0) {
                throw invalid("stop_token_ids", "must hold token ids >= 0", id);
            }
        }
        if (logprobs != null && (logprobs < 0 || logprobs > MAX_LOGPROBS)) {
            throw invalid("logprobs", "must be in [0, " + MAX_LOGPROBS + "]", logprobs);
        }
        TreeMap<Integer, Double> bias = new TreeMap<>();
        for (Map.Entry<Integer, Double> e : (logitBias == null ? Map.<Integer, Double>of() : logitBias).entrySet()) {
            if (e.getKey() == null || e.getKey() < 0) {
                throw invalid("logit_bias", "must map token ids >= 0", e.getKey());
            }
            if (e.getValue() == null || !(Math.abs(e.getValue()) <= MAX_LOGIT_BIAS)) {
                throw invalid("logit_bias", "values must be in [-" + (int) MAX_LOGIT_BIAS + ", " + (int) MAX_LOGIT_BIAS
                        + "]", e.getValue() + " for token " + e.getKey());
            }
            bias.put(e.getKey(), e.getValue());
        }
        logitBias = Collections.unmodifiableSortedMap(bias);
    }

    private static IllegalArgumentException invalid(String field, String rule, Object value) {
        return new IllegalArgumentException(field + " " + rule + ", got " + value);
    }

    /** vLLM's defaults: one completion, temperature 1, no truncation, 16 tokens. */
    public static Builder builder() {
        return new Builder();
    }

    /** Greedy decoding of up to {@code maxTokens} tokens. */
    public static SamplingParams greedy(int maxTokens) {
        return builder().temperature(0).maxTokens(maxTokens).build();
    }

    /** A builder starting from these values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.n = n;
        b.temperature = temperature;
        b.topP = topP;
        b.topK = topK;
        b.minP = minP;
        b.repetitionPenalty = repetitionPenalty;
        b.presencePenalty = presencePenalty;
        b.frequencyPenalty = frequencyPenalty;
        b.seed = seed;
        b.maxTokens = maxTokens;
        b.minTokens = minTokens;
        b.stop = new ArrayList<>(stop);
        b.stopTokenIds = new ArrayList<>(stopTokenIds);
        b.ignoreEos = ignoreEos;
        b.logprobs = logprobs;
        b.includeStopStrInOutput = includeStopStrInOutput;
        b.skipSpecialTokens = skipSpecialTokens;
        b.structuredOutput = structuredOutput;
        b.logitBias = new TreeMap<>(logitBias);
        return b;
    }

    /** Whether the choice is the argmax (temperature 0). */
    public boolean isGreedy() {
        return temperature < GREEDY_EPSILON;
    }

    /** Whether any penalty changes the logits. */
    public boolean hasPenalties() {
        return repetitionPenalty != 1.0 || presencePenalty != 0.0 || frequencyPenalty != 0.0;
    }

    /** Whether top-k is on. */
    public boolean hasTopK() {
        return topK > 0;
    }

    public static final class Builder {
        private int n = 1;
        private double temperature = 1.0;
        private double topP = 1.0;
        private int topK = 0;
        private double minP = 0.0;
        private double repetitionPenalty = 1.0;
        private double presencePenalty = 0.0;
        private double frequencyPenalty = 0.0;
        private Long seed;
        private Integer maxTokens = 16;
        private int minTokens;
        private List<String> stop = new ArrayList<>();
        private List<Integer> stopTokenIds = new ArrayList<>();
        private boolean ignoreEos;
        private Integer logprobs;
        private boolean includeStopStrInOutput;
        private boolean skipSpecialTokens = true;
        private StructuredOutput structuredOutput;
        private Map<Integer, Double> logitBias = new TreeMap<>();

        private Builder() {
        }

        public Builder n(int n) {
            this.n = n;
            return this;
        }

        public Builder temperature(double temperature) {
            this.temperature = temperature;
            return this;
        }

        public Builder topP(double topP) {
            this.topP = topP;
            return this;
        }

        public Builder topK(int topK) {
            this.topK = topK;
            return this;
        }

        public Builder minP(double minP) {
            this.minP = minP;
            return this;
        }

        public Builder repetitionPenalty(double repetitionPenalty) {
            this.repetitionPenalty = repetitionPenalty;
            return this;
        }

        public Builder presencePenalty(double presencePenalty) {
            this.presencePenalty = presencePenalty;
            return this;
        }

        public Builder frequencyPenalty(double frequencyPenalty) {
            this.frequencyPenalty = frequencyPenalty;
            return this;
        }

        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        /** null: up to the context length. */
        public Builder maxTokens(Integer maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        public Builder minTokens(int minTokens) {
            this.minTokens = minTokens;
            return this;
        }

        public Builder stop(List<String> stop) {
            this.stop = new ArrayList<>(stop);
            return this;
        }

        public Builder stop(String... stop) {
            return stop(List.of(stop));
        }

        public Builder stopTokenIds(List<Integer> stopTokenIds) {
            this.stopTokenIds = new ArrayList<>(stopTokenIds);
            return this;
        }

        public Builder ignoreEos(boolean ignoreEos) {
            this.ignoreEos = ignoreEos;
            return this;
        }

        public Builder logprobs(Integer logprobs) {
            this.logprobs = logprobs;
            return this;
        }

        public Builder includeStopStrInOutput(boolean include) {
            this.includeStopStrInOutput = include;
            return this;
        }

        public Builder skipSpecialTokens(boolean skip) {
            this.skipSpecialTokens = skip;
            return this;
        }

        /** null: free text. */
        public Builder structuredOutput(StructuredOutput structuredOutput) {
            this.structuredOutput = structuredOutput;
            return this;
        }

        /** Token id -> bias in [-100, 100]; empty: none. */
        public Builder logitBias(Map<Integer, Double> logitBias) {
            this.logitBias = new TreeMap<>(logitBias);
            return this;
        }

        public SamplingParams build() {
            return new SamplingParams(n, temperature, topP, topK, minP, repetitionPenalty, presencePenalty,
                    frequencyPenalty, seed, maxTokens, minTokens, stop, stopTokenIds, ignoreEos, logprobs,
                    includeStopStrInOutput, skipSpecialTokens, structuredOutput, logitBias);
        }
    }
}
