package ai.kiln.engine;

import ai.kiln.api.EngineOptions;
import ai.kiln.backend.Backend;
import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.model.LlamaModel;
import ai.kiln.model.ModelConfig;
import ai.kiln.model.ModelWeights;
import ai.kiln.sampling.Sampler;
import ai.kiln.scheduler.Scheduler;

/**
 * What {@link EngineLoader} puts on the device for one engine: the backend, the weights and the
 * model over them, the KV cache, the sampler and the scheduler sized for that cache.
 *
 * @param eosTokenIds end-of-sequence ids (config, generation config and tokenizer)
 */
record LoadedModel(EngineOptions options, ModelConfig config, Backend backend, ModelWeights weights, LlamaModel model,
        KvCacheStorage cache, Sampler sampler, Scheduler scheduler, int maxModelLen, int[] eosTokenIds)
        implements AutoCloseable {

    /** Frees the device memory, the last part first. */
    @Override
    public void close() {
        closeQuietly(cache);
        closeQuietly(sampler);
        closeQuietly(model);
        closeQuietly(weights);
        closeQuietly(backend);
    }

    static void closeQuietly(AutoCloseable resource) {
        if (resource != null) {
            try {
                resource.close();
            } catch (Exception ignored) {
                // Closing on the way out of a failure or a shutdown; the first error is the one to report.
            }
        }
    }
}
