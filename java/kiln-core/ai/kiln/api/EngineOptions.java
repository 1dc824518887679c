package ai.kiln.api;

import java.time.Duration;

/**
 * How an {@link Engine} runs. Build with {@link #builder()}; every field is checked here.
 *
 * @param device               "auto" (CUDA device 0 where a GPU and the CUDA libraries load, else the
 *                             CPU), "cpu", or "cuda" / "cuda:N" for CUDA device N
 * @param threads              CPU backend threads (0: one per core)
 * @param kvCacheBytes         CPU backend: bytes of KV cache (the block count follows from it)
 * @param gpuMemoryUtilization CUDA backend: the fraction of the device's free memory (as found before
 *                             loading) the engine may use; the KV cache gets what weights and
 *                             workspace leave of it. Either way the cache has at most the blocks
 *                             that maxRunningSeqs sequences of maxModelLen tokens fill.
 * @param blockSize            tokens per KV-cache block
 * @param maxBatchedTokens     token budget of one step (prompt chunks plus decodes); null: chosen
 *                             from the device, as vLLM chooses: 8192 on a GPU of 70 GiB or more
 *                             (H100, H200), else 2048 (the CPU too). The engine's own
 *                             {@link Engine#options()} report the value chosen.
 * @param maxRunningSeqs       the most sequences running at once; null: chosen from the device,
 *                             1024 on a GPU of 70 GiB or more, else 256
 * @param maxModelLen          the longest sequence, prompt plus output (null: the model's max_position_embeddings)
 * @param prefixCaching        share the KV blocks of equal prompt prefixes between requests
 * @param seed                 seeds the random streams of requests that bring no seed of their own
 *                             (null: drawn from entropy when the engine starts, so unseeded requests
 *                             differ from run to run, as OpenAI's and vLLM's do; seeded ones repeat)
 * @param streamBufferSize     outputs a streaming request may have undelivered before it is cancelled
 * @param shutdownGrace        how long {@link Engine#close()} lets in-flight requests finish
 * @param maxKvBlocks          an upper bound on the KV cache's blocks on any backend (null: what the
 *                             memory settings allow), e.g. to test or cap preemption behaviour
 * @param quantization         how linear-layer weights are stored ({@link Quantization#INT8}: the
 *                             CPU backend only; {@link Quantization#FP8}: the CPU backend, or a
 *                             CUDA GPU of compute capability 9.0 or later)
 * @param kvCacheDtype         what the KV cache stores ({@link KvCacheDType#FP8}: e4m3; on the CUDA
 *                             backend for bf16 / fp16 activations and head_dim 64, 128 or 256)
 */
public record EngineOptions(String device, int threads, long kvCacheBytes, double gpuMemoryUtilization,
        int blockSize, Integer maxBatchedTokens, Integer maxRunningSeqs, Integer maxModelLen, boolean prefixCaching,
        Long seed, int streamBufferSize, Duration shutdownGrace, Integer maxKvBlocks, Quantization quantization,
        KvCacheDType kvCacheDtype) {

    public EngineOptions {
        if (device == null || !(device.equals("auto") || device.equals("cpu") || device.equals("cuda")
                || device.matches("cuda:\\d+"))) {
            throw new IllegalArgumentException("device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got " + device);
        }
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be >= 0 (0: one per core), got " + threads);
        }
        if (kvCacheBytes <= 0) {
            throw new IllegalArgumentException("kvCacheBytes must be > 0, got " + kvCacheBytes);
        }
        if (!(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) {
            throw new IllegalArgumentException("gpuMemoryUtilization must be in (0, 1], got " + gpuMemoryUtilization);
        }
        if (blockSize < 1 || blockSize > 1024) {
            throw new IllegalArgumentException("blockSize must be in [1, 1024], got " + blockSize);
        }
        if (maxBatchedTokens != null && maxBatchedTokens < 1) {
            throw new IllegalArgumentException("maxBatchedTokens must be >= 1, got " + maxBatchedTokens);
        }
        if (maxRunningSeqs != null && maxRunningSeqs < 1) {
            throw new IllegalArgumentException("maxRunningSeqs must be >= 1, got " + maxRunningSeqs);
        }
        if (maxModelLen != null && maxModelLen < 2) {
            throw new IllegalArgumentException("maxModelLen must be >= 2, got " + maxModelLen);
        }
        if (streamBufferSize < 1) {
            throw new IllegalArgumentException("streamBufferSize must be >= 1, got " + streamBufferSize);
        }
        if (maxKvBlocks != null && maxKvBlocks < 2) {
            throw new IllegalArgumentException("maxKvBlocks must be >= 2, got " + maxKvBlocks);
        }
        if (shutdownGrace == null || shutdownGrace.isNegative()) {
            throw new IllegalArgumentException("shutdownGrace must be >= 0, got " + shutdownGrace);
        }
        if (quantization == null) {
            throw new IllegalArgumentException("quantization must not be null (Quantization.NONE: as stored)");
        }
        if (kvCacheDtype == null) {
            throw new IllegalArgumentException("kvCacheDtype must not be null (KvCacheDType.AUTO: the activations' type)");
        }
    }

    /** CPU, 512 MiB of KV cache, blocks of 16, step limits chosen from the device, prefix caching on. */
    public static Builder builder() {
        return new Builder();
    }

    public static EngineOptions defaults() {
        return builder().build();
    }

    public Builder toBuilder() {
        return new Builder().device(device).threads(threads).kvCacheBytes(kvCacheBytes)
                .gpuMemoryUtilization(gpuMemoryUtilization).blockSize(blockSize).maxBatchedTokens(maxBatchedTokens)
                .maxRunningSeqs(maxRunningSeqs).maxModelLen(maxModelLen).prefixCaching(prefixCaching).seed(seed)
                .streamBufferSize(streamBufferSize).shutdownGrace(shutdownGrace).maxKvBlocks(maxKvBlocks)
                .quantization(quantization).kvCacheDtype(kvCacheDtype);
    }

    public static final class Builder {
        private String device = "cpu";
        private int threads;
        private long kvCacheBytes = 512L << 20;
        private double gpuMemoryUtilization = 0.9;
        private int blockSize = 16;
        private Integer maxBatchedTokens;
        private Integer maxRunningSeqs;
        private Integer maxModelLen;
        private boolean prefixCaching = true;
        private Long seed;
        private int streamBufferSize = 1024;
        private Duration shutdownGrace = Duration.ofSeconds(30);
        private Integer maxKvBlocks;
        private Quantization quantization = Quantization.NONE;
        private KvCacheDType kvCacheDtype = KvCacheDType.AUTO;

        private Builder() {
        }

        public Builder device(String device) {
            this.device = device;
            return this;
        }

        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        public Builder kvCacheBytes(long bytes) {
            this.kvCacheBytes = bytes;
            return this;
        }

        public Builder gpuMemoryUtilization(double fraction) {
            this.gpuMemoryUtilization = fraction;
            return this;
        }

        public Builder blockSize(int blockSize) {
            this.blockSize = blockSize;
            return this;
        }

        /** The step's token budget, or null: chosen from the device (the default). */
        public Builder maxBatchedTokens(Integer tokens) {
            this.maxBatchedTokens = tokens;
            return this;
        }

        /** The most sequences running at once, or null: chosen from the device (the default). */
        public Builder maxRunningSeqs(Integer seqs) {
            this.maxRunningSeqs = seqs;
            return this;
        }

        public Builder maxModelLen(Integer tokens) {
            this.maxModelLen = tokens;
            return this;
        }

        public Builder prefixCaching(boolean on) {
            this.prefixCaching = on;
            return this;
        }

        /** A fixed engine seed. */
        public Builder seed(long seed) {
            return seed(Long.valueOf(seed));
        }

        /** A fixed engine seed, or null: drawn from entropy at start (the default). */
        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        public Builder streamBufferSize(int outputs) {
            this.streamBufferSize = outputs;
            return this;
        }

        public Builder maxKvBlocks(Integer blocks) {
            this.maxKvBlocks = blocks;
            return this;
        }

        public Builder shutdownGrace(Duration grace) {
            this.shutdownGrace = grace;
            return this;
        }

        public Builder quantization(Quantization quantization) {
            this.quantization = quantization;
            return this;
        }

        public Builder kvCacheDtype(KvCacheDType dtype) {
            this.kvCacheDtype = dtype;
            return this;
        }

        public EngineOptions build() {
            return new EngineOptions(device, threads, kvCacheBytes, gpuMemoryUtilization, blockSize, maxBatchedTokens,
                    maxRunningSeqs, maxModelLen, prefixCaching, seed, streamBufferSize, shutdownGrace, maxKvBlocks,
                    quantization, kvCacheDtype);
        }
    }
}
