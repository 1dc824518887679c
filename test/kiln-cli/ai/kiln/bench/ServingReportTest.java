package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The serving figures from recorded timings, against values worked out by hand. */
class ServingReportTest {

    static final double EPS = 1e-9;

    static RequestOutcome ok(int promptLen, int tokens, double ttft, double latency, double... itl) {
        return new RequestOutcome(null, promptLen, tokens, tokens, ttft, latency, itl);
    }

    static RequestOutcome failed(String error) {
        return RequestOutcome.failed(BenchPrompt.ofTokens(new int[7], 9), error);
    }

    static final List<RequestOutcome> OUTCOMES = List.of(
            ok(10, 4, 0.100, 0.400, 0.1, 0.1, 0.1),
            failed("HTTP 400: the prompt has 12 tokens"),
            ok(20, 3, 0.200, 0.300, 0.05, 0.05),
            failed("ConnectException"),
            ok(5, 1, 0.050, 0.050),
            failed("HTTP 400: the prompt has 99 tokens"));

    @Test
    void countsAndThroughputs() {
        ServingReport r = ServingReport.of(OUTCOMES, 2.0);
        assertEquals(3, r.completed());
        assertEquals(3, r.failed());
        assertEquals(35, r.totalInputTokens());
        assertEquals(8, r.totalOutputTokens());
        assertEquals(8, r.requestedOutputTokens());
        assertEquals(1.5, r.requestThroughput(), EPS);
        assertEquals(17.5, r.inputThroughput(), EPS);
        assertEquals(4.0, r.outputThroughput(), EPS);
        assertEquals(21.5, r.totalTokenThroughput(), EPS);
    }

    @Test
    void latenciesByHand() {
        ServingReport r = ServingReport.of(OUTCOMES, 2.0);
        // TTFT 100, 200, 50 ms: sorted 50, 100, 200; p90 at rank 1.8, p99 at rank 1.98.
        assertEquals(350.0 / 3, r.ttft().mean(), EPS);
        assertEquals(100, r.ttft().median(), EPS);
        assertEquals(180, r.ttft().p90(), EPS);
        assertEquals(198, r.ttft().p99(), EPS);
        assertEquals(Math.sqrt((Math.pow(100 - 350.0 / 3, 2) + Math.pow(200 - 350.0 / 3, 2) + Math.pow(50 - 350.0 / 3, 2)) / 3),
                r.ttft().std(), EPS);
        // TPOT: (400 - 100) / 3 = 100 and (300 - 200) / 2 = 50 ms; the one-token request has none.
        assertEquals(2, r.tpot().count());
        assertEquals(75, r.tpot().mean(), EPS);
        assertEquals(75, r.tpot().median(), EPS);
        assertEquals(99.5, r.tpot().p99(), EPS);
        // ITL pooled over requests: 100, 100, 100, 50, 50 ms.
        assertEquals(5, r.itl().count());
        assertEquals(80, r.itl().mean(), EPS);
        assertEquals(100, r.itl().median(), EPS);
        assertEquals(100, r.itl().p99(), EPS);
        // E2EL 400, 300, 50 ms.
        assertEquals(250, r.e2el().mean(), EPS);
        assertEquals(300, r.e2el().median(), EPS);
        assertEquals(398, r.e2el().p99(), EPS);
    }

    @Test
    void errorsGroupedByKindInOrderOfFirstSight() {
        ServingReport r = ServingReport.of(OUTCOMES, 2.0);
        assertEquals(List.of(new ServingReport.ErrorKind("HTTP 400: the prompt has 12 tokens", 2),
                new ServingReport.ErrorKind("ConnectException", 1)), r.errors());
        String summary = r.summary();
        assertTrue(summary.contains("     2 x HTTP 400: the prompt has 12 tokens"), summary);
        assertTrue(summary.contains("Failed requests:                         3"), summary);
    }

    @Test
    void jsonUsesVllmNamesAndNullWithoutSamples() {
        ObjectNode parameters = new ObjectMapper().createObjectNode().put("num_prompts", 6);
        ObjectNode line = ServingReport.of(OUTCOMES, 2.0).toJson(parameters);
        assertEquals(6, line.get("num_prompts").asInt());
        assertEquals(3, line.get("completed").asInt());
        assertEquals(4.0, line.get("output_throughput").asDouble(), EPS);
        assertEquals(198, line.get("p99_ttft_ms").asDouble(), EPS);
        assertEquals(75, line.get("median_tpot_ms").asDouble(), EPS);
        assertEquals(2, line.get("errors").get(0).get("count").asInt());

        ObjectNode none = ServingReport.of(List.of(failed("x")), 1.0).toJson(parameters);
        assertTrue(none.get("mean_ttft_ms").isNull());
        assertTrue(none.get("p99_itl_ms").isNull());
        assertEquals(0, none.get("output_throughput").asDouble());
    }

    @Test
    void onlyTheFirstKindsAreListed() {
        List<RequestOutcome> many = new java.util.ArrayList<>();
        for (String kind : List.of("a", "b", "c", "d", "e", "f", "g")) {
            many.add(failed(kind));
        }
        many.add(failed("g"));
        ObjectNode line = ServingReport.of(many, 1.0).toJson(new ObjectMapper().createObjectNode());
        assertEquals(ServingReport.LISTED_ERROR_KINDS, line.get("errors").size());
        assertEquals(3, line.get("failed_unlisted").asInt());
    }

    @Test
    void percentileInterpolatesBetweenRanks() {
        double[] sorted = {1, 2, 3, 4};
        assertEquals(2.5, ServingReport.percentile(sorted, 50), EPS);
        assertEquals(3.97, ServingReport.percentile(sorted, 99), EPS);
        assertEquals(1, ServingReport.percentile(sorted, 0), EPS);
        assertEquals(4, ServingReport.percentile(sorted, 100), EPS);
        assertEquals(7, ServingReport.percentile(new double[] {7}, 99), EPS);
    }
    /**
     * The completed requests: TTFT 100, 200, 50 ms; TPOT 100, 50 ms and 0 for the one-token answer;
     * E2EL 400, 300, 50 ms. Goodput counts those meeting every bound given (bounds inclusive).
     */
    @Test
    void goodputByHand() {
        assertEquals(1.0, ServingReport.of(OUTCOMES, 2.0, ServiceLevels.parse(List.of("ttft:150"))).requestGoodput(), EPS);
        assertEquals(0.5, ServingReport.of(OUTCOMES, 2.0, ServiceLevels.parse(List.of("ttft:150", "tpot:60")))
                .requestGoodput(), EPS);
        assertEquals(1.0, ServingReport.of(OUTCOMES, 2.0, ServiceLevels.parse(List.of("e2el:300"))).requestGoodput(), EPS);
        assertEquals(1.5, ServingReport.of(OUTCOMES, 2.0, ServiceLevels.parse(List.of("TPOT:100.5"))).requestGoodput(), EPS);
        ObjectNode with = ServingReport.of(OUTCOMES, 2.0, ServiceLevels.parse(List.of("ttft:150")))
                .toJson(new ObjectMapper().createObjectNode());
        assertEquals(1.0, with.get("request_goodput").asDouble(), EPS);
        assertTrue(ServingReport.of(OUTCOMES, 2.0).toJson(new ObjectMapper().createObjectNode()).get("request_goodput")
                .isNull());
        assertTrue(ServingReport.of(OUTCOMES, 2.0, ServiceLevels.parse(List.of("ttft:150"))).summary()
                .contains("Request goodput (req/s):"));
        assertEquals("ttft:500.0 tpot:50.0", ServiceLevels.parse(List.of("tpot:50", "ttft:500")).toString());
        for (List<String> bad : List.of(List.of("ttft"), List.of("foo:3"), List.of("ttft:-1"), List.of("ttft:x"),
                List.<String>of())) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> ServiceLevels.parse(bad));
            assertTrue(e.getMessage().startsWith("--goodput"), e.getMessage());
        }
    }

    /** The sweep's table: a row per rate in the order run, the figures as the reports have them. */
    @Test
    void sweepTableHasARowPerRate() {
        List<ServingRun> runs = List.of(new ServingRun(2, ServingReport.of(OUTCOMES, 2.0)),
                new ServingRun(2.5, ServingReport.of(OUTCOMES, 4.0)),
                new ServingRun(Double.POSITIVE_INFINITY, ServingReport.of(List.of(failed("ConnectException")), 1.0)));
        List<String> lines = ServingSweepTable.render(runs).lines().toList();
        assertEquals("Serving Benchmark Sweep (3 request rates)", lines.get(0));
        assertEquals(List.of("rate", "req/s", "completed", "failed", "req/s", "output", "tok/s", "TTFT", "median", "ms",
                "TTFT", "p99", "ms", "TPOT", "median", "ms", "TPOT", "p99", "ms", "ITL", "median", "ms", "E2EL", "median",
                "ms"), List.of(lines.get(1).strip().split(" +")));
        // ITL gaps 100, 100, 100, 50, 50 ms; E2EL 400, 300, 50 ms.
        assertEquals(List.of("2", "3", "3", "1.50", "4.00", "100.00", "198.00", "75.00", "99.50", "100.00", "300.00"),
                List.of(lines.get(2).strip().split(" +")));
        assertEquals(List.of("2.5", "3", "3", "0.75", "2.00", "100.00", "198.00", "75.00", "99.50", "100.00", "300.00"),
                List.of(lines.get(3).strip().split(" +")));
        assertEquals(List.of("inf", "0", "1", "0.00", "0.00", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"),
                List.of(lines.get(4).strip().split(" +")));
        assertEquals(5, lines.size());
    }
}
