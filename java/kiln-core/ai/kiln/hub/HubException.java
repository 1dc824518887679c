package ai.kiln.hub;

/**
 * A model could not be had from the Hugging Face Hub or its cache: not found, not allowed, the
 * network or disk failed, or the bytes received are not the ones the Hub announced. The message
 * names the repository, the file and what to do; nothing a later run would trust was written.
 */
public final class HubException extends RuntimeException {

    public HubException(String message) {
        super(message);
    }

    public HubException(String message, Throwable cause) {
        super(message, cause);
    }
}
