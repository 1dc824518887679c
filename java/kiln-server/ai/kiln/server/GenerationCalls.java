package ai.kiln.server;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestHandle;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.jetty.server.Request;

/**
 * Starts the engine requests of HTTP requests as {@link GenerationCall}s and tracks them. Every
 * engine request is submitted streaming, so the server sees its first token (the end of its wait,
 * and time to first token) and each later token as they come. Admission is bounded: past
 * --max-waiting requests without a first token, new ones get 429. A drain waits here for the
 * calls in flight, and cancels them when its grace period is over.
 */
final class GenerationCalls {

    private final Engine engine;
    private final int maxWaiting;
    private final ServerMetrics metrics;

    private final Set<RequestHandle> inFlight = ConcurrentHashMap.newKeySet();
    /** Engine requests admitted whose first token has not come yet: bounded by max-waiting. */
    private final AtomicInteger waiting = new AtomicInteger();
    /** Generation exchanges not yet completed (the response not fully written). */
    private final AtomicInteger activeExchanges = new AtomicInteger();
    private final Object idle = new Object();

    GenerationCalls(Engine engine, int maxWaiting, ServerMetrics metrics) {
        this.engine = engine;
        this.maxWaiting = maxWaiting;
        this.metrics = metrics;
    }

    /**
     * Admits the engine requests of one HTTP request (429 past max-waiting), submits them and
     * tracks them until the response is written. Throws the 4xx/5xx for a request the engine
     * refuses; {@code promptParam} names the field holding the prompt in such errors.
     */
    GenerationCall start(Exchange exchange, List<GenerateRequest> requests, String promptParam) {
        int k = requests.size();
        // NOTE: more prompts than may ever wait at once would get 429 however long the client retried.
        // The n sequences of a prompt are not limited here: the scheduler runs them in turns.
        if (k > maxWaiting) {
            throw ApiError.invalid("The request has " + k + " prompts, more than the server's --max-waiting of "
                    + maxWaiting + " that may wait at once; send at most " + maxWaiting
                    + " prompts per request.", promptParam, "too_many_prompts");
        }
        while (true) {
            int now = waiting.get();
            if (now + k > maxWaiting) {
                metrics.rejected.labelValues("max_waiting").inc();
                throw ApiError.overloaded(now, 1);
            }
            if (waiting.compareAndSet(now, now + k)) {
                break;
            }
        }
        GenerationCall call = new GenerationCall(exchange, k, metrics, waiting);
        List<CompletableFuture<GenerateResult>> futures = new ArrayList<>();
        // NOTE: counted in flight before the engine sees it: a drain that begins while it is being
        // submitted (the engine may already run it) waits for it rather than finding none.
        activeExchanges.incrementAndGet();
        try {
            for (int i = 0; i < k; i++) {
                RequestHandle handle = engine.submit(requests.get(i));
                call.add(handle);
                inFlight.add(handle);
                futures.add(handle.result().whenComplete((r, f) -> inFlight.remove(handle)));
            }
        } catch (RuntimeException e) {
            call.cancel();
            for (RequestHandle h : call.handles()) {
                inFlight.remove(h);
            }
            call.releaseUnstarted();
            exchangeEnded();
            throw GenerationErrors.submitError(e, promptParam);
        }
        Request.addCompletionListener(exchange.request, failure -> {
            if (failure != null) {
                call.cancel();
            }
            exchangeEnded();
        });
        // A client that goes away while a non-streamed request runs: Jetty reports it here.
        exchange.request.addFailureListener(failure -> call.cancel());
        // NOTE: generation may be quiet for longer than the connector's idle timeout; that is not a failure.
        exchange.request.addIdleTimeoutListener(timeout -> false);
        call.results(CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).thenApply(v -> {
            List<GenerateResult> out = new ArrayList<>();
            for (CompletableFuture<GenerateResult> f : futures) {
                out.add(f.join());
            }
            return out;
        }));
        call.results().whenComplete((results, failure) -> {
            if (results != null) {
                for (GenerateResult r : results) {
                    metrics.promptTokens.inc(r.promptTokenIds().length);
                }
            }
            metrics.requestLatency.observe((System.nanoTime() - exchange.arrivalNanos) / 1e9);
        });
        call.subscribeToEngine();
        return call;
    }

    private void exchangeEnded() {
        if (activeExchanges.decrementAndGet() == 0) {
            synchronized (idle) {
                idle.notifyAll();
            }
        }
    }

    /** Generation requests whose response is not fully written yet. */
    int inFlight() {
        return activeExchanges.get();
    }

    /** Waits until no generation request is in flight, at most {@code timeout}; true if none is. */
    boolean awaitIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (idle) {
            while (activeExchanges.get() > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                idle.wait(Math.max(1, left / 1_000_000));
            }
        }
        return true;
    }

    /** Cancels every engine request in flight (their blocks are freed at the engine's next step). */
    void cancelAll() {
        for (RequestHandle handle : inFlight) {
            handle.cancel();
        }
    }
}
