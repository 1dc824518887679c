package ai.kiln.api;

import ai.kiln.api.TokenLogprobs;
import ai.kiln.api.FinishReason;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * What one completion of a request produced since its previous output (streaming), or all of it
 * (non-streaming). The last output of a completion carries its finish reason.
 *
 * @param requestId    the request
 * @param index        which completion (0 to n - 1)
 * @param tokenIds     new token ids
 * @param text         new text (text that could be the start of a stop string is held back until it is not)
 * @param logprobs     log-probabilities of the new tokens, or null when not asked for
 * @param finishReason null until the completion's last output
 * @param stopReason   the stop string or stop token id that ended it, or null
 */
public record RequestOutput(String requestId, int index, int[] tokenIds, String text, List<TokenLogprobs> logprobs,
        FinishReason finishReason, String stopReason) {

    public RequestOutput {
        tokenIds = tokenIds.clone();
        logprobs = logprobs == null ? null : List.copyOf(logprobs);
    }

    @Override
    public int[] tokenIds() {
        return tokenIds.clone();
    }

    public boolean finished() {
        return finishReason != null;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RequestOutput r && requestId.equals(r.requestId) && index == r.index
                && Arrays.equals(tokenIds, r.tokenIds) && text.equals(r.text) && Objects.equals(logprobs, r.logprobs)
                && finishReason == r.finishReason && Objects.equals(stopReason, r.stopReason);
    }

    @Override
    public int hashCode() {
        return Objects.hash(requestId, index, Arrays.hashCode(tokenIds), text, finishReason);
    }

    @Override
    public String toString() {
        return "RequestOutput[" + requestId + "#" + index + " tokens=" + Arrays.toString(tokenIds) + " text="
                + text.length() + " chars" + (finishReason == null ? "" : " finish=" + finishReason) + "]";
    }
}
