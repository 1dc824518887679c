package ai.kiln.springai.autoconfigure;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.Quantization;
import java.nio.file.Path;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * The Kiln engine's settings, under {@code spring.ai.kiln}: the model directory, the device and
 * the memory and batching limits of {@link EngineOptions}. A setting left unset keeps the
 * engine's default, except the device, which defaults to {@code auto} as on Kiln's command line.
 */
@ConfigurationProperties(KilnEngineProperties.PREFIX)
public class KilnEngineProperties {

    public static final String PREFIX = "spring.ai.kiln";

    /**
     * Hugging Face model directory (config.json, safetensors weights, tokenizer.json and a chat
     * template). Required unless the application defines its own Kiln Engine bean.
     */
    private Path model;

    /**
     * Name the model is served as: reported in chat responses, and the only model name a request
     * may give. Default: the model directory's name.
     */
    private String servedModelName;

    /**
     * Device: "auto" (CUDA device 0 where a GPU and the CUDA libraries load, else the CPU), "cpu",
     * "cuda" or "cuda:N".
     */
    private String device = "auto";

    /** CPU backend threads; 0: one per core. Unset: 0. */
    private Integer threads;

    /**
     * How the linear layers' weights are stored: "none" (as loaded), "int8" (a scale per row) or
     * "fp8" (e4m3, a scale per row, inputs quantised per token: the CPU backend, or a CUDA GPU of
     * compute capability 9.0 or later); int8 the CPU backend only. Unset: none.
     */
    private String quantization;

    /** CPU backend: KV-cache size, e.g. 512MB (a plain number is bytes). Unset: 512MB. */
    private DataSize kvCacheBytes;

    /**
     * CUDA backend: fraction of the device memory found free at start that the engine may use;
     * the KV cache gets what the weights and workspace leave of it. Unset: 0.9.
     */
    private Double gpuMemoryUtilization;

    /** Longest sequence, prompt plus reply, in tokens. Unset: the model's max_position_embeddings. */
    private Integer maxModelLen;

    /** Most sequences running at once. Unset: 256. */
    private Integer maxRunningSeqs;

    /** Token budget of one engine step (prompt chunks plus decodes). Unset: 2048. */
    private Integer maxBatchedTokens;

    /** Tokens per KV-cache block. Unset: 16. */
    private Integer blockSize;

    /** Upper bound on the KV cache's blocks on any backend. Unset: what the memory settings allow. */
    private Integer maxKvBlocks;

    /** Share the KV blocks of equal prompt prefixes between requests. Unset: true. */
    private Boolean prefixCaching;

    /** Seeds the random streams of requests that bring no seed. Unset: drawn from entropy at start. */
    private Long seed;

    /**
     * Outputs a streaming request may have undelivered before the engine cancels it (a reader
     * too far behind). Unset: 1024.
     */
    private Integer streamBufferSize;

    /**
     * How long closing the engine (at application shutdown) lets in-flight requests finish
     * before cancelling them. Unset: 30s.
     */
    private Duration shutdownGrace;

    /**
     * The engine options these properties give: the engine's defaults, with each property set
     * here in place of its default.
     *
     * @throws IllegalArgumentException naming a value out of range
     */
    public EngineOptions toEngineOptions() {
        EngineOptions.Builder options = EngineOptions.builder().device(device);
        if (threads != null) {
            options.threads(threads);
        }
        if (quantization != null) {
            options.quantization(Quantization.fromFlag(quantization));
        }
        if (kvCacheBytes != null) {
            options.kvCacheBytes(kvCacheBytes.toBytes());
        }
        if (gpuMemoryUtilization != null) {
            options.gpuMemoryUtilization(gpuMemoryUtilization);
        }
        if (maxModelLen != null) {
            options.maxModelLen(maxModelLen);
        }
        if (maxRunningSeqs != null) {
            options.maxRunningSeqs(maxRunningSeqs);
        }
        if (maxBatchedTokens != null) {
            options.maxBatchedTokens(maxBatchedTokens);
        }
        if (blockSize != null) {
            options.blockSize(blockSize);
        }
        if (maxKvBlocks != null) {
            options.maxKvBlocks(maxKvBlocks);
        }
        if (prefixCaching != null) {
            options.prefixCaching(prefixCaching);
        }
        if (seed != null) {
            options.seed(seed);
        }
        if (streamBufferSize != null) {
            options.streamBufferSize(streamBufferSize);
        }
        if (shutdownGrace != null) {
            options.shutdownGrace(shutdownGrace);
        }
        return options.build();
    }

    /** {@link #getServedModelName()} if set, else the model directory's name, else "kiln". */
    public String resolveServedModelName() {
        if (servedModelName != null && !servedModelName.isBlank()) {
            return servedModelName;
        }
        if (model != null) {
            Path name = model.toAbsolutePath().normalize().getFileName();
            if (name != null) {
                return name.toString();
            }
        }
        return "kiln";
    }

    public Path getModel() {
        return model;
    }

    public void setModel(Path model) {
        this.model = model;
    }

    public String getServedModelName() {
        return servedModelName;
    }

    public void setServedModelName(String servedModelName) {
        this.servedModelName = servedModelName;
    }

    public String getDevice() {
        return device;
    }

    public void setDevice(String device) {
        this.device = device;
    }

    public Integer getThreads() {
        return threads;
    }

    public void setThreads(Integer threads) {
        this.threads = threads;
    }

    public String getQuantization() {
        return quantization;
    }

    public void setQuantization(String quantization) {
        this.quantization = quantization;
    }

    public DataSize getKvCacheBytes() {
        return kvCacheBytes;
    }

    public void setKvCacheBytes(DataSize kvCacheBytes) {
        this.kvCacheBytes = kvCacheBytes;
    }

    public Double getGpuMemoryUtilization() {
        return gpuMemoryUtilization;
    }

    public void setGpuMemoryUtilization(Double gpuMemoryUtilization) {
        this.gpuMemoryUtilization = gpuMemoryUtilization;
    }

    public Integer getMaxModelLen() {
        return maxModelLen;
    }

    public void setMaxModelLen(Integer maxModelLen) {
        this.maxModelLen = maxModelLen;
    }

    public Integer getMaxRunningSeqs() {
        return maxRunningSeqs;
    }

    public void setMaxRunningSeqs(Integer maxRunningSeqs) {
        this.maxRunningSeqs = maxRunningSeqs;
    }

    public Integer getMaxBatchedTokens() {
        return maxBatchedTokens;
    }

    public void setMaxBatchedTokens(Integer maxBatchedTokens) {
        this.maxBatchedTokens = maxBatchedTokens;
    }

    public Integer getBlockSize() {
        return blockSize;
    }

    public void setBlockSize(Integer blockSize) {
        this.blockSize = blockSize;
    }

    public Integer getMaxKvBlocks() {
        return maxKvBlocks;
    }

    public void setMaxKvBlocks(Integer maxKvBlocks) {
        this.maxKvBlocks = maxKvBlocks;
    }

    public Boolean getPrefixCaching() {
        return prefixCaching;
    }

    public void setPrefixCaching(Boolean prefixCaching) {
        this.prefixCaching = prefixCaching;
    }

    public Long getSeed() {
        return seed;
    }

    public void setSeed(Long seed) {
        this.seed = seed;
    }

    public Integer getStreamBufferSize() {
        return streamBufferSize;
    }

    public void setStreamBufferSize(Integer streamBufferSize) {
        this.streamBufferSize = streamBufferSize;
    }

    public Duration getShutdownGrace() {
        return shutdownGrace;
    }

    public void setShutdownGrace(Duration shutdownGrace) {
        this.shutdownGrace = shutdownGrace;
    }
}
