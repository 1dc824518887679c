package ai.kiln.server;

import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * The engine requests of one HTTP request (one per prompt), started by {@link GenerationCalls}.
 * Their outputs reach one {@link Listener} in order, or the route waits for all their results;
 * on the way each output is counted: the end of its request's wait, time to first token, time
 * per output token, tokens generated.
 */
final class GenerationCall {

    /** Receives the outputs of all of a call's engine requests; {@link #finished} or {@link #failed} comes last, once. */
    interface Listener {
        void output(int promptIndex, RequestOutput out);

        void finished();

        void failed(Throwable failure);
    }

    private record Early(int promptIndex, RequestOutput out) {
    }

    private final Exchange exchange;
    private final ServerMetrics metrics;
    /** The server's count of engine requests admitted whose first output has not come yet. */
    private final AtomicInteger waiting;
    private final List<RequestHandle> handles = new ArrayList<>();
    private final boolean[] started;                         // first output seen, per handle; guarded by this
    private final AtomicInteger completionTokens = new AtomicInteger();
    private final AtomicBoolean ended = new AtomicBoolean();
    private final long[] lastTokenNanos;
    private CompletableFuture<List<GenerateResult>> results;
    private Listener listener;                               // guarded by this
    private final List<Early> early = new ArrayList<>();     // outputs before subscribe, guarded by this
    private int open;                                        // engine streams not ended, guarded by this
    private Throwable firstFailure;                          // guarded by this

    GenerationCall(Exchange exchange, int size, ServerMetrics metrics, AtomicInteger waiting) {
        this.exchange = exchange;
        this.metrics = metrics;
        this.waiting = waiting;
        this.started = new boolean[size];
        this.lastTokenNanos = new long[size];
        this.open = size;
    }

    // ---- set up by GenerationCalls ------------------------------------------------------------

    /** Adds an engine request just submitted, for the next prompt. */
    void add(RequestHandle handle) {
        handles.add(handle);
    }

    List<RequestHandle> handles() {
        return handles;
    }

    /** The results of all the call's engine requests, in prompt order, once every one has finished. */
    CompletableFuture<List<GenerateResult>> results() {
        return results;
    }

    void results(CompletableFuture<List<GenerateResult>> all) {
        results = all;
    }

    /** Starts relaying the engine's outputs (after which they may arrive on the engine's thread). */
    void subscribeToEngine() {
        for (int i = 0; i < handles.size(); i++) {
            handles.get(i).subscribe(new Relay(i));
        }
    }

    // ---- what the routes use ------------------------------------------------------------------

    /** The engine request of prompt {@code index}. */
    RequestHandle handle(int index) {
        return handles.get(index);
    }

    int prompts() {
        return handles.size();
    }

    int promptTokens() {
        int sum = 0;
        for (RequestHandle h : handles) {
            sum += h.promptTokenIds().length;
        }
        return sum;
    }

    int completionTokens() {
        return completionTokens.get();
    }

    boolean isDone() {
        return handles.stream().allMatch(RequestHandle::isDone);
    }

    void cancel() {
        for (RequestHandle h : handles) {
            h.cancel();
        }
    }

    /** The client went away (or read too slowly): the call is cancelled, and counted so unless it had finished. */
    void cancelForGoneClient() {
        if (!isDone()) {
            metrics.cancelled.inc();
        }
        cancel();
    }

    /**
     * Answers with {@code respond} once every result is in (a non-streamed request), watching
     * meanwhile for a client that goes (which cancels the call). A failed or cancelled call is
     * answered with its error instead; if {@code respond} throws, the client still gets an answer
     * (a 500) and the exchange completes.
     */
    void respondWhenDone(Consumer<List<GenerateResult>> respond) {
        DisconnectWatch watch = DisconnectWatch.start(exchange, this::cancelForGoneClient);
        results.whenComplete((all, failure) -> {
            watch.stop();
            try {
                if (failure != null) {
                    exchange.sendError(GenerationErrors.failureError(failure));
                    return;
                }
                ApiError aborted = GenerationErrors.aborted(all);
                if (aborted != null) {
                    exchange.sendError(aborted);
                    return;
                }
                respond.accept(all);
            } catch (RuntimeException e) {
                if (exchange.response.isCommitted()) {
                    exchange.callback.failed(e);
                } else {
                    exchange.sendError(ApiError.internal("Could not write the response: " + e));
                }
            }
        });
    }

    /** Delivers every output to {@code l} in order (those that came before now at once), then the end. */
    synchronized void subscribe(Listener l) {
        listener = l;
        for (Early e : early) {
            deliver(l, e.promptIndex(), e.out());
        }
        early.clear();
        if (open == 0) {
            endListener();
        }
    }

    // ---- the engine's side --------------------------------------------------------------------

    private void onOutput(int promptIndex, RequestOutput out) {
        long now = System.nanoTime();
        int tokens = out.tokenIds().length;
        completionTokens.addAndGet(tokens);
        metrics.generationTokens.inc(tokens);
        synchronized (this) {
            if (!started[promptIndex]) {
                started[promptIndex] = true;
                waiting.decrementAndGet();
                metrics.timeToFirstToken.observe((now - exchange.arrivalNanos) / 1e9);
            } else if (tokens > 0) {
                double perToken = (now - lastTokenNanos[promptIndex]) / 1e9 / tokens;
                for (int t = 0; t < tokens; t++) {
                    metrics.timePerOutputToken.observe(perToken);
                }
            }
            if (tokens > 0) {
                lastTokenNanos[promptIndex] = now;
            }
            // NOTE: delivered under the call's lock, so outputs reach the listener in order.
            if (listener == null) {
                early.add(new Early(promptIndex, out));
            } else {
                deliver(listener, promptIndex, out);
            }
        }
    }

    /** A listener that throws ends the call: the request is cancelled and the exchange failed. */
    private void deliver(Listener l, int promptIndex, RequestOutput out) {
        try {
            l.output(promptIndex, out);
        } catch (RuntimeException e) {
            cancel();
            exchange.callback.failed(e);
        }
    }

    /** One engine request's stream ended (failure null: completed); the last one ends the call. */
    private void onEnd(int promptIndex, Throwable failure) {
        synchronized (this) {
            if (!started[promptIndex]) {
                started[promptIndex] = true;
                waiting.decrementAndGet();
            }
            if (failure != null && firstFailure == null) {
                firstFailure = failure;
            }
            boolean last = --open == 0;
            if (last && listener != null) {
                endListener();
            }
        }
    }

    /** Releases places among the waiting of handles never submitted or never started. */
    synchronized void releaseUnstarted() {
        for (int i = 0; i < started.length; i++) {
            if (!started[i]) {
                started[i] = true;
                waiting.decrementAndGet();
            }
        }
    }

    private void endListener() {
        if (!ended.compareAndSet(false, true)) {
            return;
        }
        exchange.promptTokens = promptTokens();
        exchange.completionTokens = completionTokens.get();
        if (firstFailure != null) {
            listener.failed(firstFailure);
        } else {
            listener.finished();
        }
    }

    /** Feeds one engine request's outputs to the call. */
    private final class Relay implements Flow.Subscriber<RequestOutput> {
        private final int index;

        Relay(int index) {
            this.index = index;
        }

        @Override
        public void onSubscribe(Flow.Subscription subscription) {
            // NOTE: the server's own bounded buffer (SseStream) applies backpressure; take all.
            subscription.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(RequestOutput item) {
            onOutput(index, item);
        }

        @Override
        public void onError(Throwable throwable) {
            onEnd(index, throwable);
        }

        @Override
        public void onComplete() {
            onEnd(index, null);
        }
    }
}
