package ai.kiln.testing;

import ai.kiln.model.ForwardBatch;

/** Steps for driving a model directly in tests, without the scheduler. */
public final class ModelSteps {

    private ModelSteps() {
    }

    /**
     * A one-sequence step for driving a model directly: the given tokens at positions start..,
     * their cache slots from the block table.
     */
    public static ForwardBatch singleSequenceStep(int[] tokens, int start, int[] blockTable,
            int blockSize) {
        int n = tokens.length;
        int[] positions = new int[n];
        int[] slots = new int[n];
        for (int i = 0; i < n; i++) {
            positions[i] = start + i;
            slots[i] = blockTable[positions[i] / blockSize] * blockSize + positions[i] % blockSize;
        }
        return new ForwardBatch(n, 1, tokens, positions, slots, new int[] {0, n}, new int[] {start + n},
                blockTable, blockTable.length, new int[] {n - 1}, 1);
    }
}
