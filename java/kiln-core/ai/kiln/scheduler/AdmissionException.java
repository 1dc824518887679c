package ai.kiln.scheduler;

/** A sequence that can never run here (too long for the context or the KV cache); the message names the numbers. */
public final class AdmissionException extends IllegalArgumentException {

    public AdmissionException(String message) {
        super(message);
    }
}
