package ai.kiln.model;

/** A model directory Kiln cannot load; the message names the file and, where known, the tensor. */
public class ModelLoadException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ModelLoadException(String message) {
        super(message);
    }

    public ModelLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
