package ai.kiln.engine;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.OutputIterator;
import ai.kiln.api.RequestHandle;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.FinishReason;
import ai.kiln.testing.Fixtures;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The two ways to stream besides a {@link java.util.concurrent.Flow.Subscriber}: a blocking
 * iterator and a callback; each sees every token of the result, in order, and closing the
 * iterator early cancels the request.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StreamingHelpersTest {

    static int[] concat(int[] a, int[] b) {
        return IntStream.concat(IntStream.of(a), IntStream.of(b)).toArray();
    }

    @Test
    void theIteratorAndTheCallbackSeeEveryTokenOfTheResult() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        try (Engine engine = EngineTest.engine(fixture, b -> { })) {
            GenerateRequest request = GenerateRequest.ofTokens(prompt, EngineTest.greedy(24)).withStream(true);
            RequestHandle handle = engine.submit(request);
            int[] streamed = new int[0];
            try (OutputIterator outputs = handle.iterator()) {
                while (outputs.hasNext()) {
                    streamed = concat(streamed, outputs.next().tokenIds());
                }
            }
            GenerateResult result = handle.result().get(30, TimeUnit.SECONDS);
            assertArrayEquals(result.tokenIds(), streamed);
            assertEquals(24, streamed.length);

            int[][] seen = {new int[0]};
            GenerateResult viaCallback = engine.submit(request).forEachOutput(o -> seen[0] = concat(seen[0], o.tokenIds()))
                    .get(30, TimeUnit.SECONDS);
            assertArrayEquals(result.tokenIds(), viaCallback.tokenIds());
            assertArrayEquals(result.tokenIds(), seen[0]);
            EngineTest.assertIdle(engine);
        }
    }

    @Test
    void closingTheIteratorEarlyCancelsTheRequest() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        try (Engine engine = EngineTest.engine(fixture, b -> { })) {
            RequestHandle handle = engine.submit(GenerateRequest.ofTokens(prompt, EngineTest.greedy(400)).withStream(true));
            try (OutputIterator outputs = handle.iterator()) {
                assertTrue(outputs.hasNext());
                outputs.next();
            }
            GenerateResult result = handle.result().get(30, TimeUnit.SECONDS);
            assertEquals(FinishReason.ABORT, result.finishReason());
            assertTrue(result.tokenIds().length < 400, "generated " + result.tokenIds().length);
            EngineTest.assertIdle(engine);
        }
    }

    @Test
    void aThrowingCallbackCancelsTheRequestAndFailsTheFuture() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        try (Engine engine = EngineTest.engine(fixture, b -> { })) {
            RequestHandle handle = engine.submit(GenerateRequest.ofTokens(prompt, EngineTest.greedy(400)).withStream(true));
            ExecutionException e = assertThrows(ExecutionException.class, () -> handle.forEachOutput(o -> {
                throw new IllegalStateException("the consumer gave up");
            }).get(30, TimeUnit.SECONDS));
            assertEquals("the consumer gave up", e.getCause().getMessage());
            assertEquals(FinishReason.ABORT, handle.result().get(30, TimeUnit.SECONDS).finishReason());
            EngineTest.assertIdle(engine);
        }
    }

    @Test
    void interruptingAThreadInGenerateCancelsItsRequest() throws Exception {
        try (LocalEngine engine = EngineStepFailureTest.engine()) {
            java.util.concurrent.CompletableFuture<Throwable> thrown = new java.util.concurrent.CompletableFuture<>();
            java.util.concurrent.CompletableFuture<Boolean> flagKept = new java.util.concurrent.CompletableFuture<>();
            Thread caller = new Thread(() -> {
                try {
                    engine.generate(EngineStepFailureTest.longRequest(0, 1));
                    thrown.complete(null);
                } catch (RuntimeException e) {
                    flagKept.complete(Thread.currentThread().isInterrupted());
                    thrown.complete(e);
                }
            });
            caller.start();
            EngineStepFailureTest.awaitMetrics(engine, m -> m.generationTokens() > 0, "the request to run");
            caller.interrupt();
            Throwable e = thrown.get(30, TimeUnit.SECONDS);
            assertTrue(e instanceof ai.kiln.api.RequestAbortedException, String.valueOf(e));
            assertTrue(flagKept.get(), "the interrupt flag is set again");
            EngineTest.assertIdle(engine);
            assertTrue(engine.metrics().generationTokens() < 400, "cancelled long before the context was full: "
                    + engine.metrics().generationTokens());
        }
    }

    @Test
    void whatIsChainedOnTheResultNeverRunsOnTheEngineLoop() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        try (Engine engine = EngineTest.engine(fixture, b -> { })) {
            RequestHandle handle = engine.submit(GenerateRequest.ofTokens(prompt, EngineTest.greedy(8)));
            // A callback that waits on the engine would deadlock it if it ran on the engine loop.
            java.util.concurrent.CompletableFuture<String> nested = handle.result().thenApply(r -> {
                engine.generate(GenerateRequest.ofTokens(prompt, EngineTest.greedy(2)));
                return Thread.currentThread().getName();
            });
            // A stream thread, or this one if the request was done before the callback was chained.
            String thread = nested.get(30, TimeUnit.SECONDS);
            assertTrue(thread.startsWith("kiln-stream-") || thread.equals(Thread.currentThread().getName()), thread);
        }
    }

    @Test
    void aHandleIsStillReadableAfterTheEngineClosed() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        RequestHandle handle;
        GenerateResult result;
        try (Engine engine = EngineTest.engine(fixture, b -> { })) {
            handle = engine.submit(GenerateRequest.ofTokens(prompt, EngineTest.greedy(6)));
            result = handle.result().get(30, TimeUnit.SECONDS);
        }
        int[] read = new int[0];
        try (OutputIterator outputs = handle.iterator()) {
            while (outputs.hasNext()) {
                read = concat(read, outputs.next().tokenIds());
            }
        }
        assertArrayEquals(result.tokenIds(), read);
    }
}
