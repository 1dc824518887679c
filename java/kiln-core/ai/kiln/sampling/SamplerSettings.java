package ai.kiln.sampling;

/**
 * What the sampler uses of a request's parameters, checked already (the engine takes them from
 * the request's {@code SamplingParams}).
 *
 * @param temperature       0 (or below {@link #GREEDY_BELOW}): greedy; otherwise logits are divided by it
 * @param topP              keep the most likely tokens whose mass before them is below topP; 1: off
 * @param topK              keep the topK most likely tokens; 0 or -1: off
 * @param minP              drop tokens less likely than minP times the most likely one; 0: off
 * @param repetitionPenalty 1: off
 * @param presencePenalty   0: off
 * @param frequencyPenalty  0: off
 * @param minTokens         end-of-sequence and stop ids are masked until this many tokens are generated
 * @param logprobs          -1: none; 0: the chosen token's log-probability; k: plus the k most likely tokens
 * @param ignoreEos         end-of-sequence tokens do not end the sequence (the scheduler's stop check reads it)
 */
public record SamplerSettings(double temperature, double topP, int topK, double minP, double repetitionPenalty,
        double presencePenalty, double frequencyPenalty, int minTokens, int logprobs,
        boolean ignoreEos) {

    /** Temperatures below this are greedy, as in vLLM. */
    public static final double GREEDY_BELOW = 1e-5;

    /** Greedy, no penalties, no log-probabilities. */
    public static final SamplerSettings GREEDY = new SamplerSettings(0, 1, 0, 0, 1, 0, 0, 0, -1, false);

    /** Whether the choice is the argmax. */
    public boolean isGreedy() {
        return temperature < GREEDY_BELOW;
    }

    /** Whether any penalty changes the logits. */
    public boolean hasPenalties() {
        return repetitionPenalty != 1.0 || presencePenalty != 0.0 || frequencyPenalty != 0.0;
    }

    /** Whether top-k is on. */
    public boolean hasTopK() {
        return topK > 0;
    }

    /** Whether log-probabilities are asked for. */
    public boolean wantsLogprobs() {
        return logprobs >= 0;
    }
}
