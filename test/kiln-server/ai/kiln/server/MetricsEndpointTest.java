package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@code /metrics}: requests are counted by route, a model card under its route's template (never
 * its id, which would let clients add labels without bound), unknown routes as {@code other}; the
 * JVM's and the process's own metrics are there beside the server's.
 */
class MetricsEndpointTest {

    @Test
    void modelCardsAreCountedUnderTheirRouteNotAsOther() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            assertEquals(200, harness.get("/v1/models/llama3-gqa").statusCode());
            assertEquals(200, harness.get("/v1/models/llama3-gqa").statusCode());
            assertEquals(404, harness.get("/v1/models/some-other-model").statusCode());
            assertEquals(200, harness.get("/v1/models").statusCode());
            assertEquals(404, harness.get("/v1/no-such-route").statusCode());
            String metrics = harness.get("/metrics").body();
            assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/models/{id}\",status=\"200\"} 2.0"),
                    metrics);
            assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/models/{id}\",status=\"404\"} 1.0"),
                    metrics);
            assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/models\",status=\"200\"} 1.0"), metrics);
            assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"other\",status=\"404\"} 1.0"), metrics);
            // NOTE: the served model's name is a label of the vLLM-compatible gauges (one value, the
            // server's); what must never be one is an id a client sent.
            assertFalse(metrics.contains("endpoint=\"/v1/models/llama3-gqa\""), metrics);
            assertFalse(metrics.contains("some-other-model"), metrics);
        }
    }

    @Test
    void jvmAndProcessMetricsAreScraped() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            String metrics = harness.get("/metrics").body();
            for (String name : new String[] {"jvm_memory_used_bytes{area=\"heap\"}", "jvm_memory_pool_used_bytes",
                    "jvm_threads_current", "jvm_threads_state", "jvm_gc_collection_seconds_count", "jvm_classes_currently_loaded",
                    "jvm_runtime_info", "process_cpu_seconds_total", "process_start_time_seconds",
                    "process_open_fds", "process_resident_memory_bytes"}) {
                assertTrue(metrics.contains(name), name + " missing from\n" + metrics);
            }
            // The server's own metrics are still there.
            assertTrue(metrics.contains("kiln_kv_cache_usage_ratio"), metrics);
        }
    }

    @Test
    void twoServersInOneJvmEachScrapeTheJvmMetrics() throws Exception {
        try (ServerHarness first = ServerHarness.start(); ServerHarness second = ServerHarness.start()) {
            assertTrue(first.get("/metrics").body().contains("jvm_threads_current"));
            assertTrue(second.get("/metrics").body().contains("jvm_threads_current"));
        }
    }
}
