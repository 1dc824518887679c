package ai.kiln.scheduler;

/** Why a sequence stopped (the engine reports it to callers as the API's finish reason). */
public enum FinishCause {
    /** An end-of-sequence token, a stop token id or a stop string. */
    STOP,
    /** Its token budget (max_tokens or the context length) reached. */
    LENGTH,
    /** Ended before it finished: cancelled, or its request failed. */
    ABORT
}
