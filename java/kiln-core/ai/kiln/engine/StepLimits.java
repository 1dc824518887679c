package ai.kiln.engine;

import ai.kiln.api.EngineOptions;

/**
 * The step limits (token budget, sequence cap) an engine runs with where its options leave them to
 * the device, as vLLM chooses them for its OpenAI server: a GPU of 70 GiB or more (H100, H200)
 * batches 8,192 tokens and 1,024 sequences a step, any other device 2,048 and 256. On the large
 * GPUs the smaller limits leave most of the step's matrix work undone: under 1,000 ShareGPT-like
 * requests at once on an H200 the 8B model served 13.7k output tok/s at 2,048 / 256 and 15.9k at
 * 16,384 / 1,024 (docs/performance.md).
 */
final class StepLimits {

    static final long LARGE_GPU_BYTES = 70L << 30;
    static final int LARGE_GPU_BATCHED_TOKENS = 8192;
    static final int LARGE_GPU_RUNNING_SEQS = 1024;
    static final int BATCHED_TOKENS = 2048;
    static final int RUNNING_SEQS = 256;

    private StepLimits() {
    }

    /**
     * The options with both limits set: those given are kept, the others chosen for a device of
     * {@code gpuMemoryBytes} (null: the CPU).
     */
    static EngineOptions resolve(EngineOptions options, Long gpuMemoryBytes) {
        boolean large = gpuMemoryBytes != null && gpuMemoryBytes >= LARGE_GPU_BYTES;
        return options.toBuilder()
                .maxBatchedTokens(options.maxBatchedTokens() != null ? options.maxBatchedTokens()
                        : large ? LARGE_GPU_BATCHED_TOKENS : BATCHED_TOKENS)
                .maxRunningSeqs(options.maxRunningSeqs() != null ? options.maxRunningSeqs()
                        : large ? LARGE_GPU_RUNNING_SEQS : RUNNING_SEQS)
                .build();
    }
}
