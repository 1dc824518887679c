package ai.kiln.testing;

import ai.kiln.sampling.SamplingBatch;
import ai.kiln.api.SamplingParams;
import ai.kiln.sampling.SequenceSampling;
import java.util.Arrays;

/** A sequence as a sampler sees it, for sampler tests: its sampling state and its tokens (prompt, then draws). */
public final class SampledSequence {

    public final SequenceSampling state;
    private int[] tokens;
    private final int numPrompt;
    private int numTokens;

    /**
     * @param suppressed ids that min_tokens masks
     */
    public SampledSequence(SamplingParams params, long seed, int[] prompt, int[] suppressed) {
        state = new SequenceSampling(ai.kiln.engine.ApiMapping.samplerSettings(params), seed, suppressed);
        tokens = Arrays.copyOf(prompt, prompt.length + 64);
        numPrompt = prompt.length;
        numTokens = prompt.length;
    }

    public SampledSequence(SamplingParams params, long seed) {
        this(params, seed, new int[0], new int[0]);
    }

    /** Adds this sequence as the next row of {@code batch}. */
    public void addTo(SamplingBatch batch) {
        batch.add(state, tokens, numPrompt, numTokens);
    }

    /** Records a drawn token. */
    public void append(int token) {
        if (numTokens == tokens.length) {
            tokens = Arrays.copyOf(tokens, 2 * tokens.length);
        }
        tokens[numTokens++] = token;
    }

    /** Tokens [from, numTokens). */
    public int[] tokensFrom(int from) {
        return Arrays.copyOfRange(tokens, from, numTokens);
    }

    public int numTokens() {
        return numTokens;
    }
}
