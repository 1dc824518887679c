package ai.kiln.engine;

import ai.kiln.api.EngineException;
import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.TokenLogprobs;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;

/**
 * One request's output stream, and the result built from it. The engine loop {@link #emit}s each
 * completion's outputs in order; each is folded into that completion's result, and (for a
 * streamed request) queued for the subscriber. The result is the fold of the outputs, so for a
 * request that finishes (is not aborted) a subscriber that concatenates them sees exactly the
 * result's tokens, text and log-probabilities; an aborted request's result also holds what its
 * stream never delivered (text held back for a stop string, outputs past a full buffer).
 * Requests not streamed get each completion whole, as one output, when the request ends.
 */
final class RequestStream implements RequestHandle {

    private final String requestId;
    private final int[] promptTokenIds;
    private final boolean streamed;
    private final OutputChannel<RequestOutput> channel;
    private final CompletableFuture<GenerateResult> result = new CompletableFuture<>();
    private final Executor callbacks;
    private final Runnable canceller;
    private final CompletionFold[] folds; // [n]; engine loop only

    /**
     * @param callbacks where the result completes, so that what callers chain on it never runs on
     *                  (and never blocks) the engine loop
     */
    RequestStream(String requestId, int[] promptTokenIds, int n, boolean streamed, OutputChannel<RequestOutput> channel,
            Executor callbacks, Runnable canceller) {
        this.requestId = requestId;
        this.promptTokenIds = promptTokenIds;
        this.streamed = streamed;
        this.channel = channel;
        this.callbacks = callbacks;
        this.canceller = canceller;
        this.folds = new CompletionFold[n];
        for (int i = 0; i < n; i++) {
            folds[i] = new CompletionFold(i);
        }
    }

    // ---- the caller's side -------------------------------------------------------------------

    @Override
    public String requestId() {
        return requestId;
    }

    @Override
    public int[] promptTokenIds() {
        return promptTokenIds.clone();
    }

    @Override
    public CompletableFuture<GenerateResult> result() {
        return result.copy();
    }

    @Override
    public void cancel() {
        if (!result.isDone()) {
            canceller.run();
        }
    }

    @Override
    public boolean isDone() {
        return result.isDone();
    }

    @Override
    public void subscribe(Flow.Subscriber<? super RequestOutput> subscriber) {
        channel.subscribe(subscriber);
    }

    @Override
    public String toString() {
        return "RequestHandle[" + requestId + (isDone() ? ", done" : "") + "]";
    }

    // ---- the engine loop's side --------------------------------------------------------------

    /**
     * Takes a completion's next output. False when a streamed request's subscriber has let the
     * buffer fill (the output is folded into the result but not queued). The delivery to the
     * subscriber waits for {@code deliveries} to be dispatched.
     */
    boolean emit(RequestOutput output, DeliveryBatch deliveries) {
        folds[output.index()].add(output);
        return !streamed || channel.offer(output, deliveries);
    }

    /** Folds a completion's last output without queuing it (the request is being aborted). */
    void foldOnly(RequestOutput output) {
        folds[output.index()].add(output);
    }

    /** Outputs queued and not yet delivered. */
    int pending() {
        return channel.pending();
    }

    /**
     * The result as the outputs so far make it; a request not streamed queues each completion
     * whole, to be delivered at {@link #complete} or {@link #abort}.
     */
    GenerateResult finish(int numCachedPromptTokens, GenerateResult.Timing timing) {
        List<GenerateResult.Completion> completions = new ArrayList<>(folds.length);
        for (CompletionFold fold : folds) {
            completions.add(fold.result());
            if (!streamed) {
                channel.offer(fold.whole());
            }
        }
        return new GenerateResult(requestId, promptTokenIds, completions, numCachedPromptTokens, timing);
    }

    // NOTE: the result completes on the callback executor, then the stream ends: a subscriber's
    // onComplete finds the result done, and nothing chained on the result runs on the engine loop.

    void complete(GenerateResult finished) {
        callbacks.execute(() -> {
            result.complete(finished);
            channel.complete();
        });
    }

    /** The stream fails with why the request was aborted; the result still completes with what was made. */
    void abort(GenerateResult finished, String reason) {
        callbacks.execute(() -> {
            result.complete(finished);
            channel.fail(new RequestAbortedException("request " + requestId + ": " + reason));
        });
    }

    /** The request failed: no result. */
    void fail(EngineException failure) {
        callbacks.execute(() -> {
            result.completeExceptionally(failure);
            channel.fail(failure);
        });
    }

    /** One completion's outputs so far, concatenated. */
    private final class CompletionFold {
        private final int index;
        private int[] tokens = new int[16];   // [numTokens], grown by doubling
        private int numTokens;
        private final StringBuilder text = new StringBuilder();
        private List<TokenLogprobs> logprobs; // null until an output brings some
        private FinishReason finishReason;
        private String stopReason;

        CompletionFold(int index) {
            this.index = index;
        }

        void add(RequestOutput output) {
            int[] ids = output.tokenIds();
            if (numTokens + ids.length > tokens.length) {
                tokens = Arrays.copyOf(tokens, Math.max(numTokens + ids.length, 2 * tokens.length));
            }
            System.arraycopy(ids, 0, tokens, numTokens, ids.length);
            numTokens += ids.length;
            text.append(output.text());
            if (output.logprobs() != null) {
                if (logprobs == null) {
                    logprobs = new ArrayList<>();
                }
                logprobs.addAll(output.logprobs());
            }
            if (output.finishReason() != null) {
                finishReason = output.finishReason();
                stopReason = output.stopReason();
            }
        }

        RequestOutput whole() {
            return new RequestOutput(requestId, index, Arrays.copyOf(tokens, numTokens), text.toString(), logprobs,
                    finishReason, stopReason);
        }

        GenerateResult.Completion result() {
            return new GenerateResult.Completion(index, Arrays.copyOf(tokens, numTokens), text.toString(), finishReason,
                    stopReason, logprobs);
        }
    }
}
