package ai.kiln.kvcache;

import java.util.Arrays;

/**
 * One sequence's blocks: an append-only block table (logical block i holds token positions
 * [i * blockSize, (i + 1) * blockSize)) and the chained hashes of its full blocks. Owned by the
 * sequence, changed only by {@link KvCacheManager}.
 */
public final class BlockTable {

    private int[] blocks = new int[4];      // [size] block ids
    private int size;
    private BlockHash[] hashes = new BlockHash[4]; // [numHashes] hash of full block i
    private int numHashes;
    private int numRegistered;              // blocks [0, numRegistered) are in (or came from) the prefix cache
    private int epoch;                      // bumped when the table is emptied

    /** Blocks held. */
    public int size() {
        return size;
    }

    public int get(int index) {
        if (index >= size) {
            throw new IndexOutOfBoundsException("block " + index + " of a table of " + size);
        }
        return blocks[index];
    }

    /**
     * Changes whenever the table is emptied (a preemption or the end of the sequence); while it
     * stays the same the table has only grown, so a copy of its first entries is still valid.
     */
    public int epoch() {
        return epoch;
    }

    /** The backing array: ids at [0, size()); read only. */
    public int[] ids() {
        return blocks;
    }

    /** A copy of the held block ids. */
    public int[] toArray() {
        return Arrays.copyOf(blocks, size);
    }

    /** The KV-cache slot of token position {@code position}: block * blockSize + offset. */
    public int slot(int position, int blockSize) {
        return blocks[position / blockSize] * blockSize + position % blockSize;
    }

    int numRegistered() {
        return numRegistered;
    }

    void setNumRegistered(int n) {
        numRegistered = n;
    }

    void append(int block) {
        if (size == blocks.length) {
            blocks = Arrays.copyOf(blocks, size * 2);
        }
        blocks[size++] = block;
    }

    void clear() {
        size = 0;
        numRegistered = 0;
        epoch++;
    }

    int numHashes() {
        return numHashes;
    }

    BlockHash hash(int index) {
        return hashes[index];
    }

    /** The hash of full block {@code index} (computing the chain up to it); the tokens are this sequence's. */
    BlockHash hashOf(int index, int[] tokens, int blockSize) {
        while (numHashes <= index) {
            BlockHash parent = numHashes == 0 ? BlockHash.ROOT : hashes[numHashes - 1];
            if (numHashes == hashes.length) {
                hashes = Arrays.copyOf(hashes, numHashes * 2);
            }
            hashes[numHashes] = BlockHash.of(parent, tokens, numHashes * blockSize, blockSize);
            numHashes++;
        }
        return hashes[index];
    }

    /** Takes over the first {@code count} hashes of another table over the same tokens. */
    void copyHashes(BlockTable from, int count) {
        int n = Math.min(count, from.numHashes);
        if (hashes.length < n) {
            hashes = Arrays.copyOf(hashes, n);
        }
        System.arraycopy(from.hashes, 0, hashes, 0, n);
        numHashes = Math.max(numHashes, n);
    }

    @Override
    public String toString() {
        return Arrays.toString(toArray());
    }
}
