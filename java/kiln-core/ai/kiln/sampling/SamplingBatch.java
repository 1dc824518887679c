package ai.kiln.sampling;

import java.util.Arrays;

/**
 * The sequences that sample in a step, in logits-row order, each with a view of its tokens so far
 * (the sampler rebuilds a sequence's token statistics from them when it has none); reused step
 * after step.
 */
public final class SamplingBatch {

    private SequenceSampling[] rows;
    private int[][] tokens;     // [rows] each row's prompt then output; [0, numTokens) valid; read only
    private int[] numPrompt;    // [rows]
    private int[] numTokens;    // [rows]
    private int size;

    public SamplingBatch(int capacity) {
        rows = new SequenceSampling[capacity];
        tokens = new int[capacity][];
        numPrompt = new int[capacity];
        numTokens = new int[capacity];
    }

    public void clear() {
        Arrays.fill(rows, 0, size, null);
        Arrays.fill(tokens, 0, size, null);
        size = 0;
    }

    /**
     * @param row             the sequence's sampling state
     * @param tokens          its prompt then output tokens, [0, numTokens) valid (not copied)
     * @param numPromptTokens how many of them are the prompt
     * @param numTokens       prompt plus output so far
     */
    public void add(SequenceSampling row, int[] tokens, int numPromptTokens, int numTokens) {
        if (size == rows.length) {
            int capacity = Math.max(1, size * 2);
            rows = Arrays.copyOf(rows, capacity);
            this.tokens = Arrays.copyOf(this.tokens, capacity);
            numPrompt = Arrays.copyOf(numPrompt, capacity);
            this.numTokens = Arrays.copyOf(this.numTokens, capacity);
        }
        rows[size] = row;
        this.tokens[size] = tokens;
        numPrompt[size] = numPromptTokens;
        this.numTokens[size] = numTokens;
        size++;
    }

    public int size() {
        return size;
    }

    public SequenceSampling get(int row) {
        return rows[row];
    }

    /** Row {@code row}'s tokens: [0, {@link #numTokens}) valid; read only. */
    public int[] tokens(int row) {
        return tokens[row];
    }

    public int numPromptTokens(int row) {
        return numPrompt[row];
    }

    public int numTokens(int row) {
        return numTokens[row];
    }
}
