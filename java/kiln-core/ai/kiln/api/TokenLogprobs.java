package ai.kiln.api;

import java.util.List;

/**
 * The log-probability of a chosen token under the model's raw distribution (before penalties,
 * temperature and truncation, as vLLM reports by default), with the most likely alternatives.
 *
 * @param tokenId the chosen token
 * @param logprob its log-probability
 * @param rank    1 + the number of tokens more likely than it
 * @param top     the most likely tokens, most likely first (as many as the request asked for)
 */
public record TokenLogprobs(int tokenId, float logprob, int rank, List<Candidate> top) {

    public TokenLogprobs {
        top = List.copyOf(top);
    }

    /** A token and its log-probability. */
    public record Candidate(int tokenId, float logprob) {
    }
}
