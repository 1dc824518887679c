package ai.kiln.kvcache;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The pool of KV-cache blocks: reference counts, the free queue and the prefix cache's
 * hash -> block map. Allocated once for the whole cache; not thread-safe (the engine loop owns it).
 *
 * <p>Block 0 is the null block: never handed out, so a zero in a block table never aliases
 * live data. A block whose reference count drops to zero goes to the tail of the free queue but
 * keeps its hash and contents; it can be revived by a prefix-cache hit until it reaches the head
 * and is handed out again, which evicts it. The free queue is thus the LRU order of eviction.
 * (Modelled on vLLM's v1 BlockPool and FreeKVCacheBlockQueue.)
 */
public final class BlockPool {

    /** The reserved block id. */
    public static final int NULL_BLOCK = 0;

    private final int numBlocks;
    private final int blockSize;
    private final int[] refCount;         // [numBlocks]
    // Free queue: a doubly linked list over block ids; index numBlocks is the sentinel.
    private final int[] prev;             // [numBlocks + 1]
    private final int[] next;             // [numBlocks + 1]
    private final boolean[] inFreeQueue;  // [numBlocks]
    private int numFree;
    // Prefix cache: the hash of a cached full block, its parent's hash and its tokens, for the
    // verification on lookup.
    private final BlockHash[] hashOf;      // [numBlocks], null when not cached
    private final BlockHash[] parentOf;    // [numBlocks]
    private final int[] cachedTokens;      // [numBlocks, blockSize]
    private final Map<BlockHash, Integer> cached = new HashMap<>();
    private long evictions;

    /**
     * @param numBlocks blocks in the cache, the null block included (at least 2)
     * @param blockSize tokens per block
     */
    public BlockPool(int numBlocks, int blockSize) {
        if (numBlocks < 2) {
            throw new IllegalArgumentException("the KV cache needs at least 2 blocks (one is the null block), got "
                    + numBlocks);
        }
        if (blockSize < 1) {
            throw new IllegalArgumentException("blockSize must be >= 1, got " + blockSize);
        }
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        refCount = new int[numBlocks];
        prev = new int[numBlocks + 1];
        next = new int[numBlocks + 1];
        inFreeQueue = new boolean[numBlocks];
        hashOf = new BlockHash[numBlocks];
        parentOf = new BlockHash[numBlocks];
        cachedTokens = new int[Math.multiplyExact(numBlocks, blockSize)];
        int sentinel = numBlocks;
        prev[sentinel] = sentinel;
        next[sentinel] = sentinel;
        for (int block = 1; block < numBlocks; block++) {
            appendFree(block);
        }
        // The null block is permanently "in use" so that nothing frees or hands it out.
        refCount[NULL_BLOCK] = 1;
    }

    public int numBlocks() {
        return numBlocks;
    }

    public int blockSize() {
        return blockSize;
    }

    /** Blocks that can be handed out: free ones, cached or not. */
    public int numFreeBlocks() {
        return numFree;
    }

    /** Blocks that requests can ever use: all but the null block. */
    public int numUsableBlocks() {
        return numBlocks - 1;
    }

    /** Fraction of usable blocks held by requests. */
    public double usage() {
        return 1.0 - (double) numFree / numUsableBlocks();
    }

    public int refCount(int block) {
        return refCount[block];
    }

    /** Whether the block holds a registered full block of some prefix. */
    public boolean isCached(int block) {
        return hashOf[block] != null;
    }

    /** Blocks in the prefix cache (held or free). */
    public int numCachedBlocks() {
        return cached.size();
    }

    /** Cached blocks handed out again (their contents dropped) so far. */
    public long evictions() {
        return evictions;
    }

    /** The free queue from head (next to be handed out) to tail, for tests and debugging. */
    public int[] freeQueue() {
        int[] out = new int[numFree];
        int i = 0;
        for (int block = next[numBlocks]; block != numBlocks; block = next[block]) {
            out[i++] = block;
        }
        return out;
    }

    /**
     * Takes {@code count} blocks from the head of the free queue, evicting any cached contents;
     * each gets reference count 1. The caller checks {@link #numFreeBlocks} first.
     *
     * @param out receives the ids at {@code out[offset, offset + count)}
     */
    public void allocate(int count, int[] out, int offset) {
        if (count > numFree) {
            throw new IllegalStateException("asked for " + count + " blocks, " + numFree + " are free");
        }
        for (int i = 0; i < count; i++) {
            int block = next[numBlocks];
            removeFree(block);
            if (hashOf[block] != null) {
                cached.remove(hashOf[block]);
                hashOf[block] = null;
                parentOf[block] = null;
                evictions++;
            }
            refCount[block] = 1;
            out[offset + i] = block;
        }
    }

    /** Adds a reference to a block found in the prefix cache, taking it off the free queue if idle. */
    public void touch(int block) {
        checkUsable(block);
        if (refCount[block] == 0) {
            removeFree(block);
        }
        refCount[block]++;
    }

    /**
     * Drops one reference to each block in the given order; blocks left unreferenced join the
     * tail of the free queue in that order (so pass a sequence's blocks last-first: its tail,
     * least likely to be shared, is then evicted first).
     */
    public void free(int[] blocks, int from, int to) {
        for (int i = from; i < to; i++) {
            free(blocks[i]);
        }
    }

    /** Drops one reference to a block; unreferenced, it joins the tail of the free queue. */
    public void free(int block) {
        checkUsable(block);
        if (refCount[block] <= 0) {
            throw new IllegalStateException("block " + block + " freed more often than it was taken");
        }
        if (--refCount[block] == 0) {
            appendFree(block);
        }
    }

    /**
     * The cached block with this hash whose parent hash and tokens {@code tokens[from, from +
     * blockSize)} match, or -1.
     */
    public int lookup(BlockHash hash, BlockHash parent, int[] tokens, int from) {
        Integer block = cached.get(hash);
        if (block == null || !parentOf[block].equals(parent)
                || !Arrays.equals(cachedTokens, block * blockSize, (block + 1) * blockSize, tokens, from, from + blockSize)) {
            return -1;
        }
        return block;
    }

    /**
     * Registers a full, computed block under its hash. If another block already holds that
     * prefix the block stays unregistered (an equal copy; it is simply not shared) and false is
     * returned.
     */
    public boolean register(int block, BlockHash hash, BlockHash parent, int[] tokens, int from) {
        checkUsable(block);
        if (hashOf[block] != null) {
            return hashOf[block].equals(hash);
        }
        if (cached.putIfAbsent(hash, block) != null) {
            return false;
        }
        hashOf[block] = hash;
        parentOf[block] = parent;
        System.arraycopy(tokens, from, cachedTokens, block * blockSize, blockSize);
        return true;
    }

    /** Drops every cached prefix; only when no block is held (else cached shared blocks would be lost). */
    public boolean resetPrefixCache() {
        if (numFree != numUsableBlocks()) {
            return false;
        }
        cached.clear();
        Arrays.fill(hashOf, null);
        Arrays.fill(parentOf, null);
        return true;
    }

    private void checkUsable(int block) {
        if (block <= NULL_BLOCK || block >= numBlocks) {
            throw new IllegalArgumentException("block id " + block + " is not a usable block in [1, " + numBlocks + ")");
        }
    }

    private void appendFree(int block) {
        int sentinel = numBlocks;
        int last = prev[sentinel];
        next[last] = block;
        prev[block] = last;
        next[block] = sentinel;
        prev[sentinel] = block;
        inFreeQueue[block] = true;
        numFree++;
    }

    private void removeFree(int block) {
        if (!inFreeQueue[block]) {
            throw new IllegalStateException("block " + block + " is not in the free queue");
        }
        next[prev[block]] = next[block];
        prev[next[block]] = prev[block];
        inFreeQueue[block] = false;
        numFree--;
    }
}
