package ai.kiln.sampling;

/**
 * A chosen token's log-probability under the model's raw distribution, with its rank and the most
 * likely alternatives, as the sampler read them back.
 *
 * @param tokenId     the chosen token
 * @param logprob     its log-probability
 * @param rank        1 + the number of tokens more likely than it
 * @param topIds      [k] the most likely tokens, most likely first
 * @param topLogprobs [k] their log-probabilities
 */
public record SampledLogprobs(int tokenId, float logprob, int rank, int[] topIds, float[] topLogprobs) {
}
