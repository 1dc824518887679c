package ai.kiln.sampling;

/**
 * One sequence's sampling state: its parameters, its random stream and its min-tokens mask.
 * Random numbers come from a counter-based stream (SplitMix64 at position seed + i * gamma for
 * the i-th generated token), so a sequence's choices depend only on its seed and its own logits:
 * not on the batch it runs in, nor on preemption and recompute, nor on the backend.
 */
public final class SequenceSampling {

    private static final long GAMMA = 0x9e3779b97f4a7c15L;

    private final SamplerSettings settings;
    private final long seed;
    private final int[] suppressed; // token ids masked while fewer than minTokens are generated
    private final TokenConstraint constraint; // null: any id may be drawn
    private final LogitBias logitBias;
    private int numGenerated;

    /**
     * @param settings   the request's sampling settings
     * @param seed       the random stream's seed (the request's seed, or one the engine picked)
     * @param suppressed token ids that end generation (end-of-sequence and stop ids), masked while
     *                   fewer than {@code settings.minTokens()} tokens are generated
     */
    public SequenceSampling(SamplerSettings settings, long seed, int[] suppressed) {
        this(settings, seed, suppressed, null);
    }

    /**
     * @param constraint what each drawn id must satisfy (a structured output's grammar), or null;
     *                   the sequence's own, since it tracks the sequence's output
     */
    public SequenceSampling(SamplerSettings settings, long seed, int[] suppressed, TokenConstraint constraint) {
        this(settings, seed, suppressed, constraint, LogitBias.NONE);
    }

    /** @param logitBias added to the logits before every draw ({@link LogitBias#NONE}: none) */
    public SequenceSampling(SamplerSettings settings, long seed, int[] suppressed, TokenConstraint constraint,
            LogitBias logitBias) {
        this.settings = settings;
        this.seed = seed;
        this.suppressed = settings.minTokens() > 0 ? suppressed.clone() : new int[0];
        this.constraint = constraint;
        this.logitBias = logitBias;
    }

    public LogitBias logitBias() {
        return logitBias;
    }

    /** The constraint on the ids drawn, or null. */
    public TokenConstraint constraint() {
        return constraint;
    }

    public SamplerSettings settings() {
        return settings;
    }

    public long seed() {
        return seed;
    }

    /** Tokens generated (accepted) so far. */
    public int numGenerated() {
        return numGenerated;
    }

    /** Records a generated token: advances the random stream (and the constraint). */
    public void accept(int token) {
        numGenerated++;
        if (constraint != null) {
            constraint.accept(token);
        }
    }

    /** The 53 random bits R of the next draw (its uniform number is R / 2^53). */
    public long nextRandomBits() {
        long z = seed + (numGenerated + 1L) * GAMMA;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        z = z ^ (z >>> 31);
        return z >>> 11;
    }

    /** The uniform number in [0, 1) of the next draw. */
    public double nextUniform() {
        return nextRandomBits() * 0x1.0p-53;
    }

    /** Whether the logits are used as they are and the choice is their argmax. */
    public boolean isPlainGreedy() {
        return settings.isGreedy() && !settings.hasPenalties() && !suppressing() && !settings.wantsLogprobs();
    }

    /** Whether the sampler needs a row of token statistics for its next draw: penalties, or ids to mask. */
    public boolean needsPenaltyRow() {
        return settings.hasPenalties() || suppressing();
    }

    /** Whether the suppressed ids are masked at the next draw. */
    public boolean suppressing() {
        return numGenerated < settings.minTokens() && suppressed.length > 0;
    }

    /** The ids min_tokens masks (empty when min_tokens is 0); do not modify. */
    int[] suppressed() {
        return suppressed;
    }
}
