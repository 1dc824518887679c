package ai.kiln.sampling;

/**
 * One sequence's sampling state: its parameters, its random stream and the token statistics the
 * penalties need. Random numbers come from a counter-based stream (SplitMix64 at position seed +
 * i * gamma for the i-th generated token), so a sequence's choices depend only on its seed and
 * its own logits: not on the batch it runs in, nor on preemption and recompute.
 */
public final class SequenceSampling {

    private static final long GAMMA = 0x9e3779b97f4a7c15L;

    private final SamplingParams params;
    private final long seed;
    private final int[] suppressed;        // token ids masked while fewer than minTokens are generated
    private final TokenCounts promptTokens; // for the repetition penalty; null when it is off
    private final TokenCounts outputTokens; // for all penalties; null when they are off
    private int numGenerated;

    /**
     * @param params       the request's parameters
     * @param seed         the random stream's seed (the request's seed, or one the engine picked)
     * @param prompt       the prompt tokens, {@code prompt[0, promptLength)}
     * @param suppressed   token ids that end generation (end-of-sequence and stop ids), masked while
     *                     fewer than {@code params.minTokens()} tokens are generated
     */
    public SequenceSampling(SamplingParams params, long seed, int[] prompt, int promptLength, int[] suppressed) {
        this.params = params;
        this.seed = seed;
        this.suppressed = params.minTokens() > 0 ? suppressed.clone() : new int[0];
        if (params.hasPenalties()) {
            outputTokens = new TokenCounts();
            if (params.repetitionPenalty() != 1.0) {
                promptTokens = new TokenCounts();
                for (int i = 0; i < promptLength; i++) {
                    promptTokens.add(prompt[i]);
                }
            } else {
                promptTokens = null;
            }
        } else {
            outputTokens = null;
            promptTokens = null;
        }
    }

    public SamplingParams params() {
        return params;
    }

    public long seed() {
        return seed;
    }

    /** Tokens generated (accepted) so far. */
    public int numGenerated() {
        return numGenerated;
    }

    /** Records a generated token: advances the random stream and the penalty statistics. */
    public void accept(int token) {
        numGenerated++;
        if (outputTokens != null) {
            outputTokens.add(token);
        }
    }

    /** The uniform number in [0, 1) for choosing the next token. */
    public double nextUniform() {
        long z = seed + (numGenerated + 1L) * GAMMA;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        z = z ^ (z >>> 31);
        return (z >>> 11) * 0x1.0p-53;
    }

    /** Whether the logits are used as they are and the choice is their argmax. */
    public boolean isPlainGreedy() {
        return params.isGreedy() && outputTokens == null && !suppressing() && params.logprobs() == null;
    }

    boolean suppressing() {
        return numGenerated < params.minTokens() && suppressed.length > 0;
    }

    int[] suppressed() {
        return suppressed;
    }

    TokenCounts promptTokens() {
        return promptTokens;
    }

    TokenCounts outputTokens() {
        return outputTokens;
    }
}
