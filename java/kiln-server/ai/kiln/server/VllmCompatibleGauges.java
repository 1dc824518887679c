package ai.kiln.server;

import ai.kiln.api.EngineMetrics;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.function.DoubleSupplier;
import java.util.function.Supplier;

/**
 * The gauges that the Gateway API Inference Extension's model-server protocol names for
 * vLLM-compatible servers, so that its endpoint picker (and llm-d's, and autoscalers configured for
 * vLLM) read Kiln's load as they read vLLM's. Names, help texts and labels are vLLM's (V1 engine):
 * one engine, {@code engine="0"}, and {@code model_name} the served model's name.
 *
 * <p>NOTE: the names carry a colon. Prometheus' data model allows it (it is conventionally left to
 * recording rules), and the Java client (1.10) takes and writes such names unchanged in the text
 * format, so these are ordinary gauges of the server's registry; the test checks the exact lines.
 */
final class VllmCompatibleGauges {

    static final String WAITING = "vllm:num_requests_waiting";
    static final String RUNNING = "vllm:num_requests_running";
    static final String KV_CACHE_USAGE = "vllm:kv_cache_usage_perc";
    static final String CACHE_CONFIG = "vllm:cache_config_info";

    /** vLLM's label for its engine index; Kiln runs one engine per server. */
    private static final String ENGINE_INDEX = "0";

    private VllmCompatibleGauges() {
    }

    /** Registers the four gauges; {@code engine} is read on every scrape. */
    static void register(PrometheusRegistry registry, String modelName, Supplier<EngineMetrics> engine) {
        perEngine(registry, WAITING, "Number of requests waiting to be processed.", modelName,
                () -> engine.get().numWaiting());
        perEngine(registry, RUNNING, "Number of requests in model execution batches.", modelName,
                () -> engine.get().numRunning());
        // vLLM's "perc" is a fraction, 0 to 1, as Kiln's usage already is.
        perEngine(registry, KV_CACHE_USAGE, "KV-cache usage. 1 means 100 percent usage.", modelName,
                () -> engine.get().kvCacheUsage());
        // An info metric as vLLM writes it: a gauge held at 1 whose labels carry the values. The
        // endpoint picker's prefix-cache scorer reads block_size and num_gpu_blocks from it.
        GaugeWithCallback.builder().name(CACHE_CONFIG).help("Information of the LLMEngine CacheConfig")
                .labelNames("block_size", "engine", "num_gpu_blocks")
                .callback(cb -> {
                    EngineMetrics now = engine.get();
                    cb.call(1, Integer.toString(now.blockSize()), ENGINE_INDEX, Integer.toString(now.numKvBlocks()));
                })
                .register(registry);
    }

    private static void perEngine(PrometheusRegistry registry, String name, String help, String modelName,
            DoubleSupplier value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("engine", "model_name")
                .callback(cb -> cb.call(value.getAsDouble(), ENGINE_INDEX, modelName))
                .register(registry);
    }
}
