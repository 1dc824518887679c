package ai.kiln.sampling;

import java.util.Arrays;

/** A step's sampled tokens, row by row; reused step after step. */
public final class SamplerOutput {

    private int[] tokenIds;             // [rows]
    private SampledLogprobs[] logprobs;   // [rows], null where not asked for

    public SamplerOutput(int capacity) {
        tokenIds = new int[capacity];
        logprobs = new SampledLogprobs[capacity];
    }

    /** Makes room for {@code rows} rows and clears their log-probabilities. */
    public void reset(int rows) {
        if (tokenIds.length < rows) {
            tokenIds = new int[rows];
            logprobs = new SampledLogprobs[rows];
        } else {
            Arrays.fill(logprobs, 0, rows, null);
        }
    }

    public int tokenId(int row) {
        return tokenIds[row];
    }

    public SampledLogprobs logprobs(int row) {
        return logprobs[row];
    }

    public void set(int row, int tokenId, SampledLogprobs rowLogprobs) {
        tokenIds[row] = tokenId;
        logprobs[row] = rowLogprobs;
    }

    /** The backing id array, rows [0, rows). */
    public int[] tokenIds() {
        return tokenIds;
    }
}
