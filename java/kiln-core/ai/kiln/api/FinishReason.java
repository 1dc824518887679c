package ai.kiln.api;

/** Why a sequence stopped, as the OpenAI API names it. */
public enum FinishReason {
    /** An end-of-sequence token, a stop token id or a stop string. */
    STOP("stop"),
    /** max_tokens reached, or the context length. */
    LENGTH("length"),
    /** Cancelled before it finished (by the caller, a lagging stream, or the engine closing). */
    ABORT("abort");

    private final String apiName;

    FinishReason(String apiName) {
        this.apiName = apiName;
    }

    /** "stop", "length" or "abort". */
    public String apiName() {
        return apiName;
    }

    @Override
    public String toString() {
        return apiName;
    }
}
