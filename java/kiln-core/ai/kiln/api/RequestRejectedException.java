package ai.kiln.api;

/** A request that can never run here (too long for the context or the KV cache); the message names the numbers. */
public final class RequestRejectedException extends IllegalArgumentException {

    public RequestRejectedException(String message) {
        super(message);
    }
}
