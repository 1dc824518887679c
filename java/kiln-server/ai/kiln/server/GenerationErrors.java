package ai.kiln.server;

import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestRejectedException;
import java.util.List;
import java.util.concurrent.CompletionException;

/** What a client is told when the engine refuses a request, fails it, or cancels it before it finished. */
final class GenerationErrors {

    private GenerationErrors() {
    }

    /**
     * The engine refused a request at submission: too long for the context (400), the engine closed
     * (503), a bad argument (400); {@code promptParam} names the field holding the prompt.
     */
    static ApiError submitError(RuntimeException e, String promptParam) {
        if (e instanceof ApiError a) {
            return a;
        }
        if (e instanceof RequestRejectedException) {
            return ApiError.invalid("This model's maximum context length is exceeded: " + e.getMessage() + ".",
                    promptParam, "context_length_exceeded");
        }
        if (e instanceof IllegalStateException) {
            return ApiError.unavailable("The engine is not taking requests: " + e.getMessage(), "engine_closed");
        }
        if (e instanceof IllegalArgumentException) {
            String message = e.getMessage();
            // NOTE: the engine checks logit_bias ids against the vocabulary; its message starts with the field's name.
            if (message != null && message.startsWith("logit_bias ")) {
                return ApiError.invalid("'logit_bias' " + message.substring("logit_bias ".length()) + ".", "logit_bias");
            }
            return ApiError.invalid(capitalize(message) + ".", promptParam);
        }
        return ApiError.internal("Could not start the request: " + e);
    }

    /** A request that failed while it ran: cancelled (503) or an engine failure (500). */
    static ApiError failureError(Throwable failure) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause()
                : failure;
        if (cause instanceof RequestAbortedException) {
            return ApiError.unavailable("The request was cancelled: " + cause.getMessage(), "request_cancelled");
        }
        return ApiError.internal("Generation failed: " + cause.getMessage());
    }

    /**
     * A non-streamed request cancelled before it finished (the drain's grace period ran out) is a
     * 503 rather than a partial answer; null when every completion finished.
     */
    static ApiError aborted(List<GenerateResult> results) {
        for (GenerateResult r : results) {
            for (GenerateResult.Completion c : r.completions()) {
                if (c.finishReason() == FinishReason.ABORT) {
                    return ApiError.unavailable("The request was cancelled: " + c.stopReason(), "request_cancelled");
                }
            }
        }
        return null;
    }

    private static String capitalize(String s) {
        return s == null || s.isEmpty() ? "invalid request" : Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }
}
