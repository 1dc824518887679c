package ai.kiln.engine;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.RequestHandle;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.kiln.backend.BackendException;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.testing.Fixtures;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A failed model step (a gemm made to throw by {@link CpuBackend#failNextGemms}) fails the
 * requests with a sequence in that step, all their sequences included, and no others: the rest
 * finish with the tokens they give alone, new requests are served, the KV blocks all return to
 * the pool and the gauges read idle.
 *
 * <p>Which requests a failing step holds is made certain by the running cap: with {@code
 * maxRunningSeqs(2)} and blocks for every sequence at full length (so no preemption), a step runs
 * exactly the two running sequences, and whatever waits behind them is not in it.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EngineStepFailureTest {

    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");

    static LocalEngine engine() {
        return EngineTest.engine(FIXTURE, b -> b.maxRunningSeqs(2));
    }

    static int[] prompt(int record) {
        return FIXTURE.records().get(record).promptTokenIds();
    }

    static GenerateRequest greedy(int record, int maxTokens) {
        return GenerateRequest.ofTokens(prompt(record), EngineTest.greedy(maxTokens));
    }

    /**
     * A request to inject a failure into once it runs: it goes on until the context of 512 is
     * full, hundreds of steps, so that the engine cannot finish it between the test seeing it run
     * and the injection.
     */
    static GenerateRequest longRequest(int record, int n) {
        return GenerateRequest.ofTokens(prompt(record), EngineTest.greedy(1).toBuilder().maxTokens(null).n(n).build());
    }

    static void failNextGemm(LocalEngine engine) {
        ((CpuBackend) engine.backend()).failNextGemms(1);
    }

    /** The request failed with the injected backend error, named in the engine's message. */
    static EngineException assertFailedByInjectedGemm(RequestHandle handle) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> handle.result().get(60, TimeUnit.SECONDS));
        EngineException failure = assertInstanceOf(EngineException.class, e.getCause());
        BackendException cause = assertInstanceOf(BackendException.class, failure.getCause());
        assertTrue(cause.getMessage().contains("injected failure"), cause.getMessage());
        assertTrue(failure.getMessage().contains(cause.getMessage()), failure.getMessage());
        return failure;
    }

    static void awaitMetrics(Engine engine, Predicate<EngineMetrics> condition, String what)
            throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.test(engine.metrics())) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out waiting for " + what + ": " + engine.metrics());
            }
            Thread.sleep(1);
        }
    }

    /**
     * Nothing in flight: the gauges read idle, every block is free again and the scheduler's
     * bookkeeping holds (read here only because the loop has nothing left to touch it with).
     */
    static void assertIdleAndConsistent(LocalEngine engine, int freeBlocksAtStart) throws InterruptedException {
        EngineTest.assertIdle(engine);
        Scheduler scheduler = engine.scheduler();
        assertFalse(scheduler.hasWork());
        assertEquals(freeBlocksAtStart, scheduler.kvCache().pool().numFreeBlocks(), "free KV blocks");
        assertNull(scheduler.checkInvariants());
        assertEquals(0, engine.metrics().numPreemptions(), "a preemption would make the failing step's contents uncertain");
    }

    static int freeBlocks(LocalEngine engine) {
        int free = engine.scheduler().kvCache().pool().numFreeBlocks();
        assertEquals(engine.numKvBlocks(), free, "every block is free before the first request");
        return free;
    }

    @Test
    void aFailedFirstStepFailsItsRequestAndParkedSiblingsAndTheGaugesReadIdle() throws Exception {
        try (LocalEngine engine = engine()) {
            int freeAtStart = freeBlocks(engine);
            int[] alone = engine.generate(greedy(1, 32)).tokenIds();
            assertArrayEquals(FIXTURE.records().get(1).greedyTokenIds(), alone);

            // n = 2: the first step computes completion 0's prompt while completion 1 is parked behind it.
            failNextGemm(engine);
            RequestHandle failed = engine.submit(longRequest(2, 2));
            assertFailedByInjectedGemm(failed);
            // The metrics are published before the future fails: no new step is needed to correct them.
            assertIdleAndConsistent(engine, freeAtStart);

            assertArrayEquals(alone, engine.generate(greedy(1, 32)).tokenIds(), "a request after the failure");
            assertIdleAndConsistent(engine, freeAtStart);
        }
    }

    @Test
    void aFailedDecodeStepFailsBothRequestsInItAndTheWaitingOneFinishes() throws Exception {
        try (LocalEngine engine = engine()) {
            int freeAtStart = freeBlocks(engine);
            int[] survivorAlone = engine.generate(greedy(0, 32)).tokenIds();
            int[] laterAlone = engine.generate(greedy(2, 32)).tokenIds();
            long generatedBefore = engine.metrics().generationTokens();

            EngineTest.Collector streamA = new EngineTest.Collector(Long.MAX_VALUE);
            EngineTest.Collector streamB = new EngineTest.Collector(Long.MAX_VALUE);
            RequestHandle a = engine.submit(longRequest(1, 1).withStream(true));
            a.subscribe(streamA);
            RequestHandle b = engine.submit(longRequest(3, 1).withStream(true));
            b.subscribe(streamB);
            RequestHandle waiting = engine.submit(greedy(0, 32));
            // A and B decoding, the third held back by the running cap.
            awaitMetrics(engine, m -> m.numRunning() == 2 && m.numWaiting() == 1
                    && m.generationTokens() - generatedBefore >= 10, "two requests decoding and one waiting");
            failNextGemm(engine);

            EngineException failedA = assertFailedByInjectedGemm(a);
            EngineException failedB = assertFailedByInjectedGemm(b);
            assertSame(failedA, streamA.end.get(30, TimeUnit.SECONDS), "A's stream fails with the same error");
            assertSame(failedB, streamB.end.get(30, TimeUnit.SECONDS), "B's stream fails with the same error");
            assertTrue(streamA.tokens(0).length > 0 && streamB.tokens(0).length > 0, "both were generating");

            assertArrayEquals(survivorAlone, waiting.result().get(60, TimeUnit.SECONDS).tokenIds(),
                    "the request waiting outside the failed step");
            assertArrayEquals(laterAlone, engine.generate(greedy(2, 32)).tokenIds(), "a request after the failure");
            assertIdleAndConsistent(engine, freeAtStart);
        }
    }

    @Test
    void aFailedStepFailsEverySiblingOfItsRequestAndSparesTheRequestBehindThem() throws Exception {
        try (LocalEngine engine = engine()) {
            int freeAtStart = freeBlocks(engine);
            int[] survivorAlone = engine.generate(greedy(1, 32)).tokenIds();
            long generatedBefore = engine.metrics().generationTokens();

            // n = 3 under a cap of 2: completions 0 and 1 run, completion 2 waits.
            RequestHandle siblings = engine.submit(longRequest(2, 3));
            awaitMetrics(engine, m -> m.numRunning() == 2 && m.numWaiting() == 1
                    && m.generationTokens() - generatedBefore >= 10, "two completions decoding, the third waiting");
            RequestHandle behind = engine.submit(greedy(1, 32));
            awaitMetrics(engine, m -> m.numWaiting() == 2, "the second request queued behind the third completion");
            failNextGemm(engine);

            assertFailedByInjectedGemm(siblings);
            assertArrayEquals(survivorAlone, behind.result().get(60, TimeUnit.SECONDS).tokenIds(),
                    "the request waiting outside the failed step");
            assertIdleAndConsistent(engine, freeAtStart);
        }
    }
}
