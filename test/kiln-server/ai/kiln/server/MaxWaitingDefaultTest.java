package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.net.http.HttpResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Without --max-waiting the waiting bound follows the engine's batch: 4 x its running sequences,
 * never below 256 (the harness engine runs 128, so 512). (Parallel samples do not count against the
 * bound, and one request holds at most 256 prompts, so a single request cannot reach it: the rule
 * is checked on the engine the server serves.) AdmissionLimitTest checks a bound that is given.
 */
class MaxWaitingDefaultTest {

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start(ServerHarness.serverOptions(), ServerHarness.engineOptions().build());
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    @Test
    void theBoundIsFourBatchesOfTheEngineAndAtLeast256() {
        assertNull(ServerHarness.serverOptions().maxWaiting(), "left to the engine by default");
        assertEquals(128, harness.engine.options().maxRunningSeqs());
        assertEquals(512, KilnServer.defaultMaxWaiting(harness.engine));
        HttpResponse<String> served = harness.post("/v1/completions", "{\"model\": \"" + ServerHarness.MODEL
                + "\", \"prompt\": [[1], [2], [3]], \"max_tokens\": 1}");
        assertEquals(200, served.statusCode(), served.body());
        try (ServerHarness small = ServerHarness.start(ServerHarness.serverOptions(),
                ServerHarness.engineOptions().maxRunningSeqs(8).build())) {
            assertEquals(256, KilnServer.defaultMaxWaiting(small.engine));
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
