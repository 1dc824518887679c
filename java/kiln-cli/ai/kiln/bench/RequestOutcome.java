package ai.kiln.bench;

/**
 * What became of one streamed request of {@code kiln bench serve}. Times are in seconds from the
 * moment the request was sent.
 *
 * @param error        null on success; otherwise why it failed (HTTP status and message, the
 *                     stream's error event, a connection error, a timeout)
 * @param promptLen    the prompt's tokens
 * @param outputLen    the tokens asked for (max_tokens)
 * @param outputTokens the tokens generated: the server's usage count, else the chunks received
 * @param ttft         time to the first chunk carrying a choice
 * @param latency      time to the last such chunk
 * @param itl          the gaps between consecutive chunks: [number of chunks - 1]
 */
public record RequestOutcome(String error, int promptLen, int outputLen, int outputTokens, double ttft,
        double latency, double[] itl) {

    public static RequestOutcome failed(BenchPrompt prompt, String error) {
        return new RequestOutcome(error, prompt.promptLen(), prompt.outputLen(), 0, Double.NaN, Double.NaN,
                new double[0]);
    }

    public boolean success() {
        return error == null;
    }

    /** Seconds per output token after the first, (latency - TTFT) / (tokens - 1); 0 for a one-token answer. */
    public double tpot() {
        return outputTokens > 1 ? (latency - ttft) / (outputTokens - 1) : 0;
    }
}
