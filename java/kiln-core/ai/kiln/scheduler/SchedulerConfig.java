package ai.kiln.scheduler;

/**
 * The scheduler's limits.
 *
 * @param maxBatchedTokens the token budget of one step (prompt chunks plus decodes)
 * @param maxRunningSeqs   the most sequences running (holding blocks) at once, and so per step
 * @param maxModelLen      the longest sequence, prompt plus output
 */
public record SchedulerConfig(int maxBatchedTokens, int maxRunningSeqs, int maxModelLen) {

    public SchedulerConfig {
        if (maxBatchedTokens < 1) {
            throw new IllegalArgumentException("maxBatchedTokens must be >= 1, got " + maxBatchedTokens);
        }
        if (maxRunningSeqs < 1) {
            throw new IllegalArgumentException("maxRunningSeqs must be >= 1, got " + maxRunningSeqs);
        }
        if (maxModelLen < 2) {
            throw new IllegalArgumentException("maxModelLen must be >= 2, got " + maxModelLen);
        }
    }
}
