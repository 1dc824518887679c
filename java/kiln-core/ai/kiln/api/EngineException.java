package ai.kiln.api;

/** The engine could not start, or a step failed (the requests in flight fail with it). */
public final class EngineException extends RuntimeException {

    public EngineException(String message) {
        super(message);
    }

    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
