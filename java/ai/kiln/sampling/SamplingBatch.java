package ai.kiln.sampling;

import java.util.Arrays;

/** The sequences that sample in a step, in logits-row order; reused step after step. */
public final class SamplingBatch {

    private SequenceSampling[] rows;
    private int size;

    public SamplingBatch(int capacity) {
        rows = new SequenceSampling[capacity];
    }

    public void clear() {
        Arrays.fill(rows, 0, size, null);
        size = 0;
    }

    public void add(SequenceSampling row) {
        if (size == rows.length) {
            rows = Arrays.copyOf(rows, Math.max(1, size * 2));
        }
        rows[size++] = row;
    }

    public int size() {
        return size;
    }

    public SequenceSampling get(int row) {
        return rows[row];
    }
}
