package ai.kiln.api;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.function.Consumer;

/**
 * A submitted request: its outputs as a {@link Flow.Publisher} (one subscriber; with
 * {@link GenerateRequest#stream()} they come as they are generated, else one per completion at
 * the end), or through {@link #iterator()} (a blocking loop) or {@link #forEachOutput} (a
 * callback), its whole result as a future, and {@link #cancel()}.
 *
 * <p>The stream never blocks the engine: outputs wait in a bounded buffer (of
 * {@link EngineOptions#streamBufferSize()}) for the subscriber's demand, and a request whose
 * subscriber falls further behind is cancelled. A stream ends with {@code onComplete} when the
 * request finishes, or with {@code onError(}{@link RequestAbortedException}{@code )} naming why
 * it was cancelled; the result future completes just before the stream ends (for an aborted
 * request, with finish reason abort and what was generated). If a step fails, the future and the
 * stream fail with an {@link EngineException}. Stream callbacks, and whatever is chained on the
 * result future, run on the engine's stream threads, never on the engine loop.
 */
public interface RequestHandle extends Flow.Publisher<RequestOutput> {

    String requestId();

    /** The prompt as the model sees it (after tokenization and the chat template). */
    int[] promptTokenIds();

    /**
     * Completes when the request finishes, with the result built from its outputs (a view:
     * completing it here does not affect the request).
     */
    CompletableFuture<GenerateResult> result();

    /** Asks the engine to stop the request; its blocks are freed at the next step. Idempotent. */
    void cancel();

    boolean isDone();

    /**
     * The outputs as a blocking iterator (this handle's one subscriber); see {@link OutputIterator}.
     */
    default OutputIterator iterator() {
        return new OutputIterator(this);
    }

    /**
     * Calls {@code onOutput} with each output as it comes, on the engine's stream thread (this
     * handle's one subscriber; a slow callback holds the stream back), and returns the result.
     * The future fails as the stream does, with the {@link RequestAbortedException} or
     * {@link EngineException} that ended it; a callback that throws cancels the request and
     * fails the future with what it threw.
     */
    default CompletableFuture<GenerateResult> forEachOutput(Consumer<? super RequestOutput> onOutput) {
        CompletableFuture<GenerateResult> done = new CompletableFuture<>();
        subscribe(new Flow.Subscriber<RequestOutput>() {
            private Flow.Subscription subscription;

            @Override
            public void onSubscribe(Flow.Subscription s) {
                subscription = s;
                s.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(RequestOutput output) {
                try {
                    onOutput.accept(output);
                } catch (RuntimeException e) {
                    subscription.cancel();
                    cancel();
                    done.completeExceptionally(e);
                }
            }

            @Override
            public void onError(Throwable failure) {
                done.completeExceptionally(failure);
            }

            @Override
            public void onComplete() {
                result().whenComplete((r, failure) -> {
                    if (failure != null) {
                        done.completeExceptionally(failure);
                    } else {
                        done.complete(r);
                    }
                });
            }
        });
        return done;
    }
}
