package ai.kiln.api;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/**
 * A submitted request: its outputs as a {@link Flow.Publisher} (one subscriber; with
 * {@link GenerateRequest#stream()} they come as they are generated, else one per completion at
 * the end), its whole result as a future, and {@link #cancel()}.
 *
 * <p>The stream never blocks the engine: outputs wait in a bounded buffer (of
 * {@link EngineOptions#streamBufferSize()}) for the subscriber's demand, and a request whose
 * subscriber falls further behind is cancelled. A stream ends with {@code onComplete} when the
 * request finishes, or with {@code onError(}{@link RequestAbortedException}{@code )} naming why
 * it was cancelled; the result future then still completes, with finish reason abort and what
 * was generated. If a step fails, the future fails with an {@link EngineException}.
 */
public final class RequestHandle implements Flow.Publisher<RequestOutput> {

    private final String requestId;
    private final int[] promptTokenIds;
    private final CompletableFuture<GenerateResult> result;
    private final OutputChannel<RequestOutput> outputs;
    private final Runnable canceller;

    RequestHandle(String requestId, int[] promptTokenIds, CompletableFuture<GenerateResult> result,
            OutputChannel<RequestOutput> outputs, Runnable canceller) {
        this.requestId = requestId;
        this.promptTokenIds = promptTokenIds;
        this.result = result;
        this.outputs = outputs;
        this.canceller = canceller;
    }

    public String requestId() {
        return requestId;
    }

    /** The prompt as the model sees it (after tokenization and the chat template). */
    public int[] promptTokenIds() {
        return promptTokenIds.clone();
    }

    /** Completes when the request finishes (a view: completing it here does not affect the request). */
    public CompletableFuture<GenerateResult> result() {
        return result.copy();
    }

    /** Asks the engine to stop the request; its blocks are freed at the next step. Idempotent. */
    public void cancel() {
        if (!result.isDone()) {
            canceller.run();
        }
    }

    public boolean isDone() {
        return result.isDone();
    }

    @Override
    public void subscribe(Flow.Subscriber<? super RequestOutput> subscriber) {
        outputs.subscribe(subscriber);
    }

    @Override
    public String toString() {
        return "RequestHandle[" + requestId + (isDone() ? ", done" : "") + "]";
    }
}
