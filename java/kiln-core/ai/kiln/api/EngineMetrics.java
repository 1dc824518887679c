package ai.kiln.api;

/**
 * A snapshot of the engine's state and counters, refreshed after every step.
 *
 * @param numRunning         sequences holding KV blocks
 * @param numWaiting         sequences waiting for admission
 * @param kvCacheUsage       fraction of usable KV blocks held by sequences, in [0, 1]
 * @param numKvBlocks        usable KV blocks in the cache
 * @param blockSize          tokens per block
 * @param prefixCacheQueries prompt tokens looked up in the prefix cache
 * @param prefixCacheHits    of those, tokens found cached (not computed)
 * @param promptTokens       prompt tokens of requests that started generating
 * @param generationTokens   tokens generated
 * @param prefillTokens      tokens computed in prompt chunks (prompts, and recomputes after a
 *                           preemption; tokens found in the prefix cache are not computed)
 * @param numPreemptions     sequences preempted for lack of blocks (to be recomputed)
 * @param requestsFinished   requests finished (any reason)
 * @param steps              model steps run
 * @param hostNanos          time the engine loop spent in Java over those steps: scheduling, block
 *                           bookkeeping, stop checks and handing outputs to requests
 * @param modelNanos         time spent in the model's forward pass and sampling, including the wait
 *                           for the device to finish
 */
public record EngineMetrics(int numRunning, int numWaiting, double kvCacheUsage, int numKvBlocks, int blockSize,
        long prefixCacheQueries, long prefixCacheHits, long promptTokens, long generationTokens, long prefillTokens,
        long numPreemptions, long requestsFinished, long steps, long hostNanos, long modelNanos) {

    /** Hits over queries; 0 before any query. */
    public double prefixCacheHitRate() {
        return prefixCacheQueries == 0 ? 0 : (double) prefixCacheHits / prefixCacheQueries;
    }
}
