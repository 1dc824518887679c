package ai.kiln.backend;

/** An op or allocation a backend refused or could not carry out; the message says why. */
public class BackendException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BackendException(String message) {
        super(message);
    }

    public BackendException(String message, Throwable cause) {
        super(message, cause);
    }
}
