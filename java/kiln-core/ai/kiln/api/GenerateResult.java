package ai.kiln.api;

import ai.kiln.api.TokenLogprobs;
import ai.kiln.api.FinishReason;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A finished request: its prompt ids, each completion, token counts and timing.
 *
 * @param requestId          the request
 * @param promptTokenIds     the prompt as the model saw it
 * @param completions        one per requested completion, by index
 * @param numCachedPromptTokens prompt tokens whose K/V came from the prefix cache (first completion)
 * @param timing             when things happened
 */
public record GenerateResult(String requestId, int[] promptTokenIds, List<Completion> completions,
        int numCachedPromptTokens, Timing timing) {

    public GenerateResult {
        promptTokenIds = promptTokenIds.clone();
        completions = List.copyOf(completions);
    }

    /**
     * One completion.
     *
     * @param index        0 to n - 1
     * @param tokenIds     generated token ids (a final end-of-sequence or stop token included)
     * @param text         generated text (a stop string cut off unless asked to keep it)
     * @param finishReason stop, length or abort
     * @param stopReason   the stop string or stop token id that ended it, the abort's reason, or null
     * @param logprobs     per generated token, or null when not asked for
     */
    public record Completion(int index, int[] tokenIds, String text, FinishReason finishReason, String stopReason,
            List<TokenLogprobs> logprobs) {

        public Completion {
            tokenIds = tokenIds.clone();
            logprobs = logprobs == null ? null : List.copyOf(logprobs);
        }

        @Override
        public int[] tokenIds() {
            return tokenIds.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Completion c && index == c.index && Arrays.equals(tokenIds, c.tokenIds)
                    && text.equals(c.text) && finishReason == c.finishReason && Objects.equals(stopReason, c.stopReason)
                    && Objects.equals(logprobs, c.logprobs);
        }

        @Override
        public int hashCode() {
            return Objects.hash(index, Arrays.hashCode(tokenIds), text, finishReason);
        }
    }

    /**
     * @param queued           arrival to first scheduled step
     * @param timeToFirstToken arrival to the first generated token (null if none was)
     * @param total            arrival to finish
     */
    public record Timing(Duration queued, Duration timeToFirstToken, Duration total) {
    }

    /** The first completion's token ids. */
    public int[] tokenIds() {
        return completions.get(0).tokenIds();
    }

    /** The first completion's text. */
    public String text() {
        return completions.get(0).text();
    }

    /** The first completion's finish reason. */
    public FinishReason finishReason() {
        return completions.get(0).finishReason();
    }

    @Override
    public int[] promptTokenIds() {
        return promptTokenIds.clone();
    }

    /** Tokens generated over all completions. */
    public int numGeneratedTokens() {
        return completions.stream().mapToInt(c -> c.tokenIds.length).sum();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerateResult r && requestId.equals(r.requestId)
                && Arrays.equals(promptTokenIds, r.promptTokenIds) && completions.equals(r.completions)
                && numCachedPromptTokens == r.numCachedPromptTokens && timing.equals(r.timing);
    }

    @Override
    public int hashCode() {
        return Objects.hash(requestId, Arrays.hashCode(promptTokenIds), completions);
    }
}
