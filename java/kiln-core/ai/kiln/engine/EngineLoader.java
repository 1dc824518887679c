package ai.kiln.engine;

import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.KvCacheDType;
import ai.kiln.backend.Backend;
import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.model.LlamaModel;
import ai.kiln.model.ModelArtifact;
import ai.kiln.model.ModelConfig;
import ai.kiln.model.ModelWeights;
import ai.kiln.model.WeightFiles;
import ai.kiln.model.WeightQuantization;
import ai.kiln.sampling.BackendSampler;
import ai.kiln.sampling.Sampler;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.scheduler.SchedulerConfig;
import ai.kiln.tensor.DType;
import java.nio.file.Path;
import java.util.LinkedHashSet;

/**
 * Puts a model on its device: opens the backend the options name, loads the weights, sizes the
 * step workspace and the KV cache from the memory left, and builds the scheduler over that cache.
 * Whatever was allocated is freed again when a later part fails.
 */
final class EngineLoader {

    private EngineLoader() {
    }

    static LoadedModel load(Path modelDir, ModelConfig config, TextCodec codec, EngineOptions requested) {
        EngineOptions options = Backends.resolveDevice(requested);
        int maxModelLen = options.maxModelLen() == null ? config.maxPositions() : options.maxModelLen();
        if (maxModelLen > config.maxPositions()) {
            throw new EngineException("maxModelLen " + maxModelLen + " exceeds the model's max_position_embeddings "
                    + config.maxPositions());
        }
        int blockSize = options.blockSize();
        int maxBlocksPerSeq = (maxModelLen + blockSize - 1) / blockSize;
        Backend backend;
        if (Backends.isCpu(options)) {
            // The CPU backend's memory budget needs the step workspace, and so the limits, first.
            options = StepLimits.resolve(options, null);
            backend = Backends.open(options, modelDir, Backends.workspaceBytes(config, options.maxBatchedTokens(),
                    options.maxRunningSeqs(), maxBlocksPerSeq, maxModelLen));
        } else {
            backend = Backends.open(options, modelDir, 0);
        }
        ModelWeights weights = null;
        LlamaModel model = null;
        Sampler sampler = null;
        KvCacheStorage cache = null;
        try {
            if (!Backends.isCpu(options)) {
                options = StepLimits.resolve(options, backend.totalMemoryBytes());
            }
            int maxTokens = options.maxBatchedTokens();
            int maxSeqs = options.maxRunningSeqs();
            long freeBefore = backend.freeMemoryBytes();
            WeightQuantization quantization = ApiMapping.weightQuantization(options.quantization());
            if (ModelArtifact.isArtifact(modelDir)) {
                weights = ModelArtifact.open(modelDir).loadWeights(config, backend, quantization);
            } else {
                try (WeightFiles files = WeightFiles.open(modelDir)) {
                    weights = ModelWeights.load(config, files, backend, quantization);
                }
            }
            model = new LlamaModel(config, weights, backend, maxTokens, maxSeqs, maxBlocksPerSeq, maxModelLen);
            sampler = new BackendSampler(backend, maxSeqs, config.vocabSize());
            DType kvDType = kvCacheDType(options, backend, config.headDim());
            int numBlocks = kvCacheBlocks(options, config, backend, kvDType, freeBefore, maxSeqs, maxBlocksPerSeq);
            cache = new KvCacheStorage(backend, config.numLayers(), numBlocks, blockSize, config.numKvHeads(),
                    config.headDim(), kvDType);
            // Every decode graph now, before the first request (a no-op without graphs).
            model.captureDecodeGraphs(cache);
            KvCacheManager kv = new KvCacheManager(numBlocks, blockSize, options.prefixCaching());
            LinkedHashSet<Integer> eos = new LinkedHashSet<>(config.eosTokenIds());
            if (codec != null) {
                codec.eosTokenId().ifPresent(eos::add);
            }
            int[] eosIds = eos.stream().mapToInt(Integer::intValue).toArray();
            Scheduler scheduler = new Scheduler(new SchedulerConfig(maxTokens, maxSeqs, maxModelLen), kv, eosIds);
            return new LoadedModel(options, config, backend, weights, model, cache, sampler, scheduler, maxModelLen,
                    eosIds);
        } catch (RuntimeException e) {
            LoadedModel.closeQuietly(cache);
            LoadedModel.closeQuietly(sampler);
            LoadedModel.closeQuietly(model);
            LoadedModel.closeQuietly(weights);
            LoadedModel.closeQuietly(backend);
            throw e;
        }
    }

    /**
     * KV blocks for the memory left: the CPU's configured bytes, or on a GPU the fraction of the
     * memory found free at the start, less what the weights and workspace took.
     */
    /** The KV cache's element type the options ask for, refused where the backend keeps no such cache. */
    static DType kvCacheDType(EngineOptions options, Backend backend, int headDim) {
        if (options.kvCacheDtype() == KvCacheDType.AUTO) {
            return backend.activationDType();
        }
        if (!backend.supportsKvCacheDType(DType.F8_E4M3, headDim)) {
            throw new EngineException("--kv-cache-dtype fp8: the " + (Backends.isCpu(options) ? "CPU" : "CUDA")
                    + " backend keeps no FP8 KV cache for this model (head_dim " + headDim + ", "
                    + backend.activationDType() + " activations; the CUDA backend's need head_dim 64, 128 or 256"
                    + " and bf16 or fp16); use --kv-cache-dtype auto");
        }
        return DType.F8_E4M3;
    }

    private static int kvCacheBlocks(EngineOptions options, ModelConfig config, Backend backend, DType kvDType,
            long freeBefore, int maxSeqs, int maxBlocksPerSeq) {
        int blockSize = options.blockSize();
        long blockBytes = KvCacheStorage.bytesPerBlock(config.numLayers(), blockSize, config.numKvHeads(),
                config.headDim(), kvDType);
        long kvBytes = Backends.isCpu(options) ? options.kvCacheBytes()
                : backend.freeMemoryBytes() - (long) ((1 - options.gpuMemoryUtilization()) * freeBefore);
        long numBlocks = kvBytes / blockBytes;
        if (numBlocks < 2) {
            String where = Backends.isCpu(options) ? ""
                    : String.format(" (%d bytes free after the weights and workspace, less %.0f%% of the %d found"
                            + " free at the start)", backend.freeMemoryBytes(),
                            100 * (1 - options.gpuMemoryUtilization()), freeBefore);
            throw new EngineException(String.format("the KV cache gets %d bytes%s, room for %d blocks of %d tokens"
                    + " (%d bytes each); at least 2 are needed", kvBytes, where, Math.max(0, numBlocks), blockSize,
                    blockBytes));
        }
        // NOTE: more blocks than every running sequence at full length could hold would only
        // serve the prefix cache; capping there bounds the block pool's host memory for small
        // models on large devices (and keeps the count an int however large the CPU budget).
        numBlocks = Math.min(numBlocks, (long) maxSeqs * maxBlocksPerSeq + 1);
        if (options.maxKvBlocks() != null) {
            numBlocks = Math.min(numBlocks, options.maxKvBlocks());
        }
        return Math.toIntExact(numBlocks);
    }
}
