package ai.kiln.tokenizer;

/**
 * BPE merge lookup: (left id, right id) to (rank, merged id), in an open-addressing table of
 * primitive longs so that the hot loop neither boxes nor chases pointers.
 */
final class MergeTable {
    /** Returned by {@link #get} when the pair has no merge. */
    static final long NONE = -1L;
    private static final long EMPTY_KEY = -1L;

    /** Key and value side by side (key at 2 * slot), so that a probe touches one cache line. */
    private final long[] entries;
    private final int mask;
    private int size;

    MergeTable(int expectedMerges) {
        int capacity = Integer.highestOneBit(Math.max(16, expectedMerges * 2 - 1)) << 1;
        entries = new long[capacity * 2];
        for (int slot = 0; slot < capacity; slot++) {
            entries[2 * slot] = EMPTY_KEY;
        }
        mask = capacity - 1;
    }

    static long pairKey(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    static int rankOf(long merge) {
        return (int) (merge >>> 32);
    }

    static int mergedIdOf(long merge) {
        return (int) merge;
    }

    /** Adds or replaces a merge; a later duplicate overrides an earlier one, as in Hugging Face. */
    void put(int left, int right, int rank, int mergedId) {
        if (left < 0 || right < 0 || rank < 0 || mergedId < 0) {
            throw new IllegalArgumentException("negative id or rank in merge " + left + " " + right);
        }
        if ((size + 1) * 2 > mask + 1) {
            throw new IllegalStateException("merge table sized for fewer merges than were added");
        }
        long key = pairKey(left, right);
        int slot = slotOf(key);
        while (entries[2 * slot] != EMPTY_KEY && entries[2 * slot] != key) {
            slot = (slot + 1) & mask;
        }
        if (entries[2 * slot] == EMPTY_KEY) {
            size++;
        }
        entries[2 * slot] = key;
        entries[2 * slot + 1] = ((long) rank << 32) | (mergedId & 0xFFFFFFFFL);
    }

    /** The packed merge for a pair (use {@link #rankOf}, {@link #mergedIdOf}), or {@link #NONE}. */
    long get(int left, int right) {
        long key = pairKey(left, right);
        int slot = slotOf(key);
        while (true) {
            long k = entries[2 * slot];
            if (k == key) {
                return entries[2 * slot + 1];
            }
            if (k == EMPTY_KEY) {
                return NONE;
            }
            slot = (slot + 1) & mask;
        }
    }

    int size() {
        return size;
    }

    private int slotOf(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29)) & mask;
    }
}
