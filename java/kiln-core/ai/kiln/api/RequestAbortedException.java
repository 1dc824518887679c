package ai.kiln.api;

/** Ends the output stream of a request that was cancelled, fell behind or outlived the engine; the message says which. */
public final class RequestAbortedException extends RuntimeException {

    public RequestAbortedException(String message) {
        super(message);
    }
}
