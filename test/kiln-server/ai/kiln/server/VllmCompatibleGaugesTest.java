package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.EngineMetrics;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The gauges of the Gateway API Inference Extension's model-server protocol, as a scraper (the
 * endpoint picker, Prometheus) reads them: vLLM's names with the colon kept, vLLM's help texts and
 * labels, and the engine's values of the moment.
 */
class VllmCompatibleGaugesTest {

    private static EngineMetrics engineState(int running, int waiting, double kvUsage, int blocks, int blockSize) {
        return new EngineMetrics(running, waiting, kvUsage, blocks, blockSize, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    @Test
    void theExpositionIsVllmsLineForLine() {
        ServerMetrics metrics = new ServerMetrics();
        AtomicReference<EngineMetrics> engine = new AtomicReference<>(engineState(3, 7, 0.25, 1234, 16));
        metrics.engineGauges("meta-llama/Llama-3.2-1B", engine::get);
        String text = new String(metrics.scrape(), StandardCharsets.UTF_8);

        assertContainsBlock(text, """
                # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
                # TYPE vllm:num_requests_waiting gauge
                vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.2-1B"} 7.0
                """);
        assertContainsBlock(text, """
                # HELP vllm:num_requests_running Number of requests in model execution batches.
                # TYPE vllm:num_requests_running gauge
                vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.2-1B"} 3.0
                """);
        assertContainsBlock(text, """
                # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
                # TYPE vllm:kv_cache_usage_perc gauge
                vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.2-1B"} 0.25
                """);
        assertContainsBlock(text, """
                # HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
                # TYPE vllm:cache_config_info gauge
                vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="1234"} 1.0
                """);
        // Kiln's own gauges read the same snapshot.
        assertTrue(text.contains("\nkiln_requests_waiting 7.0\n"), text);
        assertTrue(text.contains("\nkiln_kv_cache_usage_ratio 0.25\n"), text);
    }

    @Test
    void eachScrapeReadsTheEngineAnew() {
        ServerMetrics metrics = new ServerMetrics();
        AtomicReference<EngineMetrics> engine = new AtomicReference<>(engineState(0, 0, 0.0, 64, 32));
        metrics.engineGauges("m", engine::get);
        assertTrue(scrape(metrics).contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 0.0\n"));
        engine.set(engineState(2, 5, 1.0, 64, 32));
        String text = scrape(metrics);
        assertTrue(text.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 5.0\n"), text);
        assertTrue(text.contains("vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 2.0\n"), text);
        assertTrue(text.contains("vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 1.0\n"), text);
        assertTrue(text.contains("vllm:cache_config_info{block_size=\"32\",engine=\"0\",num_gpu_blocks=\"64\"} 1.0\n"),
                text);
    }

    @Test
    void aModelNameIsEscapedAsTheTextFormatRequires() {
        ServerMetrics metrics = new ServerMetrics();
        metrics.engineGauges("odd \"name\"\\x", () -> engineState(0, 1, 0.0, 8, 16));
        String text = scrape(metrics);
        assertTrue(text.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"odd \\\"name\\\"\\\\x\"} 1.0\n"),
                text);
    }

    @Test
    void theServersMetricsRouteServesThemWithTheLiveEngine() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            HttpResponse<String> response = harness.get("/metrics");
            assertEquals(200, response.statusCode());
            assertEquals("text/plain; version=0.0.4; charset=utf-8",
                    response.headers().firstValue("Content-Type").orElseThrow());
            String text = response.body();
            var engine = harness.engine.metrics();
            String labels = "{engine=\"0\",model_name=\"" + ServerHarness.MODEL + "\"}";
            assertTrue(text.contains("\nvllm:num_requests_waiting" + labels + " 0.0\n"), text);
            assertTrue(text.contains("\nvllm:num_requests_running" + labels + " 0.0\n"), text);
            assertTrue(text.contains("\nvllm:kv_cache_usage_perc" + labels + " 0.0\n"), text);
            assertTrue(text.contains("\nvllm:cache_config_info{block_size=\"" + engine.blockSize()
                    + "\",engine=\"0\",num_gpu_blocks=\"" + engine.numKvBlocks() + "\"} 1.0\n"), text);
            // The client writes the names as given, never with the colon rewritten.
            assertFalse(text.contains("vllm_"), text);
        }
    }

    private static String scrape(ServerMetrics metrics) {
        return new String(metrics.scrape(), StandardCharsets.UTF_8);
    }

    /** {@code block}'s lines appear together, in order, as whole lines. */
    private static void assertContainsBlock(String text, String block) {
        assertTrue(("\n" + text).contains("\n" + block), "missing\n" + block + "from\n" + text);
    }
}
