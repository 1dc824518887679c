package ai.kiln.server;

import ai.kiln.api.EngineMetrics;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.function.DoubleSupplier;
import java.util.function.Supplier;

/**
 * The server's Prometheus metrics, in a registry of its own (so several servers in one JVM, as in
 * the tests, do not share counts). The engine's live state is read when {@code /metrics} is
 * scraped, through the suppliers given to {@link #engineGauges}. Each scrape also gives the JVM's
 * and the process's metrics (the client's JVM instrumentation: memory, threads, GC, classes,
 * CPU, open files), which are the JVM's own and so kept once for all the servers in it.
 */
final class ServerMetrics {

    /**
     * NOTE: one for the JVM, not one per server: the instrumentation keeps every registry it was
     * registered with, and adds GC listeners for each, for the life of the JVM.
     */
    private static final PrometheusRegistry JVM_REGISTRY = jvmRegistry();

    private static PrometheusRegistry jvmRegistry() {
        PrometheusRegistry registry = new PrometheusRegistry();
        JvmMetrics.builder().register(registry);
        return registry;
    }

    private static final double[] TTFT_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
            1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    private static final double[] TPOT_BUCKETS = {0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
            0.5, 0.75, 1.0, 2.5, 5.0, 10.0};
    private static final double[] E2E_BUCKETS = {0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0,
            120.0, 300.0};

    final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();

    final Counter requests = Counter.builder().name("kiln_http_requests_total")
            .help("HTTP requests answered, by endpoint and status code").labelNames("endpoint", "status")
            .register(registry);
    final Histogram timeToFirstToken = Histogram.builder().name("kiln_time_to_first_token_seconds")
            .help("Time from a request's arrival to its first generated token").classicOnly()
            .classicUpperBounds(TTFT_BUCKETS).register(registry);
    final Histogram timePerOutputToken = Histogram.builder().name("kiln_time_per_output_token_seconds")
            .help("Time between consecutive generated tokens of one sequence").classicOnly()
            .classicUpperBounds(TPOT_BUCKETS).register(registry);
    final Histogram requestLatency = Histogram.builder().name("kiln_e2e_request_latency_seconds")
            .help("Time from a generation request's arrival to its last byte").classicOnly()
            .classicUpperBounds(E2E_BUCKETS).register(registry);
    final Counter promptTokens = Counter.builder().name("kiln_prompt_tokens_total")
            .help("Prompt tokens of finished requests").register(registry);
    final Counter generationTokens = Counter.builder().name("kiln_generation_tokens_total")
            .help("Tokens generated").register(registry);
    final Counter rejected = Counter.builder().name("kiln_requests_rejected_total")
            .help("Generation requests turned away before reaching the engine, by reason").labelNames("reason")
            .register(registry);
    final Counter cancelled = Counter.builder().name("kiln_requests_cancelled_total")
            .help("Requests cancelled because the client went away or read too slowly").register(registry);

    /**
     * Registers the engine's gauges, Kiln's own and the {@link VllmCompatibleGauges} under the
     * served model's name: {@code engine} is read on every scrape.
     */
    void engineGauges(String modelName, Supplier<EngineMetrics> engine) {
        gauge("kiln_requests_running", "Requests being decoded or prefilled in the running batch",
                () -> engine.get().numRunning());
        gauge("kiln_requests_waiting", "Requests waiting to be scheduled", () -> engine.get().numWaiting());
        gauge("kiln_kv_cache_usage_ratio", "Fraction of KV-cache blocks in use (0 to 1)",
                () -> engine.get().kvCacheUsage());
        gauge("kiln_prefix_cache_hit_rate", "Prompt tokens served from the prefix cache over prompt tokens looked up",
                () -> engine.get().prefixCacheHitRate());
        VllmCompatibleGauges.register(registry, modelName, engine);
    }

    private void gauge(String name, String help, DoubleSupplier value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.getAsDouble()))
                .register(registry);
    }

    String contentType() {
        return writer.getContentType();
    }

    byte[] scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        try {
            writer.write(out, withJvm(registry.scrape()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static MetricSnapshots withJvm(MetricSnapshots server) {
        MetricSnapshots.Builder all = MetricSnapshots.builder();
        server.forEach(all::metricSnapshot);
        JVM_REGISTRY.scrape().forEach(all::metricSnapshot);
        return all.build();
    }
}
