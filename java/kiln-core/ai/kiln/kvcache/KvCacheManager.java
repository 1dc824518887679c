package ai.kiln.kvcache;

import java.util.Arrays;

/**
 * Gives sequences their KV-cache blocks: allocation of the slots a step will write, automatic
 * prefix caching of full blocks, forking for parallel samples and freeing. One per engine, driven
 * by the scheduler on the engine loop thread. (Modelled on vLLM's v1 KVCacheManager.)
 *
 * <p>A full block is registered in the prefix cache once its tokens have been computed (after the
 * step that wrote them), so a cached block always holds valid K/V. A new sequence first looks up
 * its longest cached prefix of full blocks, leaving at least its last token to compute (the step
 * needs that token's logits), and takes references to those blocks instead of computing them.
 * Every block a step writes is held by that sequence alone: hits and forks share only full
 * blocks before the first token the sequence computes.
 */
public final class KvCacheManager {

    /**
     * A prefix-cache lookup's result, valid until the pool next changes.
     *
     * @param blocks          cached blocks of the prefix, in order
     * @param numQueryTokens  the tokens the lookup was for (for the hit-rate counters)
     */
    public record PrefixHit(int[] blocks, int numQueryTokens) {
        public static final PrefixHit NONE = new PrefixHit(new int[0], 0);

        /** Tokens whose K/V the hit supplies. */
        public int numTokens(int blockSize) {
            return blocks.length * blockSize;
        }
    }

    private final BlockPool pool;
    private final int blockSize;
    private final boolean prefixCaching;
    private long prefixQueries;
    private long prefixHits;
    private int[] scratch = new int[16];

    /**
     * @param numBlocks     blocks in the cache, the null block included
     * @param blockSize     tokens per block
     * @param prefixCaching whether full blocks are shared between sequences with equal prefixes
     */
    public KvCacheManager(int numBlocks, int blockSize, boolean prefixCaching) {
        this.pool = new BlockPool(numBlocks, blockSize);
        this.blockSize = blockSize;
        this.prefixCaching = prefixCaching;
    }

    public BlockPool pool() {
        return pool;
    }

    public int blockSize() {
        return blockSize;
    }

    public boolean prefixCaching() {
        return prefixCaching;
    }

    /** Blocks needed to hold {@code numTokens} tokens. */
    public int blocksFor(int numTokens) {
        return (numTokens + blockSize - 1) / blockSize;
    }

    /** Fraction of usable blocks held by sequences. */
    public double usage() {
        return pool.usage();
    }

    /** Prompt tokens looked up in the prefix cache by admitted sequences. */
    public long prefixCacheQueries() {
        return prefixQueries;
    }

    /** Of those, tokens found cached (not computed). */
    public long prefixCacheHits() {
        return prefixHits;
    }

    /**
     * The longest run of cached full blocks at the start of {@code tokens[0, numTokens)}, at
     * most {@code (numTokens - 1) / blockSize} blocks so the last token is always computed.
     * Takes no references; pass the result to {@link #allocateSlots} right away.
     */
    public PrefixHit findCachedPrefix(BlockTable table, int[] tokens, int numTokens) {
        if (!prefixCaching || numTokens <= blockSize) {
            return new PrefixHit(PrefixHit.NONE.blocks, numTokens);
        }
        int maxBlocks = (numTokens - 1) / blockSize;
        int[] found = new int[maxBlocks];
        int n = 0;
        BlockHash parent = BlockHash.ROOT;
        while (n < maxBlocks) {
            BlockHash hash = table.hashOf(n, tokens, blockSize);
            int block = pool.lookup(hash, parent, tokens, n * blockSize);
            if (block < 0) {
                break;
            }
            found[n++] = block;
            parent = hash;
        }
        return new PrefixHit(n == maxBlocks ? found : Arrays.copyOf(found, n), numTokens);
    }

    /**
     * Makes the table hold slots for tokens [0, numTokens): first the hit's cached blocks (when
     * the table is empty and a hit is given), then new blocks from the free queue. Returns false,
     * changing nothing, when too few blocks are free.
     */
    public boolean allocateSlots(BlockTable table, PrefixHit hit, int numTokens) {
        int numHit = hit == null ? 0 : hit.blocks.length;
        if (numHit > 0 && table.size() != 0) {
            throw new IllegalStateException("a prefix hit can only start an empty block table");
        }
        int numNew = blocksFor(numTokens) - table.size() - numHit;
        int revived = 0; // hit blocks that sit idle in the free queue: taking them uses up free blocks
        for (int i = 0; i < numHit; i++) {
            if (pool.refCount(hit.blocks[i]) == 0) {
                revived++;
            }
        }
        if (numNew + revived > pool.numFreeBlocks()) {
            return false;
        }
        for (int i = 0; i < numHit; i++) {
            pool.touch(hit.blocks[i]);
            table.append(hit.blocks[i]);
        }
        table.setNumRegistered(Math.max(table.numRegistered(), numHit));
        if (numNew > 0) {
            if (scratch.length < numNew) {
                scratch = new int[Math.max(numNew, scratch.length * 2)];
            }
            pool.allocate(numNew, scratch, 0);
            for (int i = 0; i < numNew; i++) {
                table.append(scratch[i]);
            }
        }
        if (hit != null && prefixCaching) {
            prefixQueries += hit.numQueryTokens;
            prefixHits += (long) numHit * blockSize;
        }
        return true;
    }

    /** Whether {@link #allocateSlots} (without a hit) could grow the table to hold {@code numTokens}. */
    public boolean canAllocate(BlockTable table, int numTokens) {
        return blocksFor(numTokens) - table.size() <= pool.numFreeBlocks();
    }

    /**
     * Registers the table's full blocks within the first {@code numComputedTokens} tokens (whose
     * K/V are now written) in the prefix cache.
     */
    public void cacheFullBlocks(BlockTable table, int[] tokens, int numComputedTokens) {
        if (!prefixCaching) {
            return;
        }
        int full = Math.min(numComputedTokens / blockSize, table.size());
        for (int i = table.numRegistered(); i < full; i++) {
            BlockHash parent = i == 0 ? BlockHash.ROOT : table.hashOf(i - 1, tokens, blockSize);
            pool.register(table.get(i), table.hashOf(i, tokens, blockSize), parent, tokens, i * blockSize);
        }
        table.setNumRegistered(Math.max(table.numRegistered(), full));
    }

    /**
     * Starts {@code child}, an empty table for a sequence with the same first tokens, with
     * references to the first {@code numBlocks} (full, computed) blocks of {@code parent}.
     */
    public void fork(BlockTable parent, BlockTable child, int numBlocks) {
        if (child.size() != 0) {
            throw new IllegalStateException("fork into a non-empty block table " + child);
        }
        if (numBlocks > parent.size()) {
            throw new IllegalArgumentException("fork of " + numBlocks + " blocks from a table of " + parent.size());
        }
        for (int i = 0; i < numBlocks; i++) {
            pool.touch(parent.get(i));
            child.append(parent.get(i));
        }
        child.copyHashes(parent, numBlocks);
        child.setNumRegistered(Math.min(parent.numRegistered(), numBlocks));
    }

    /**
     * Releases all the table's blocks, last first (so a sequence's tail is evicted before the
     * prefix others may share), and empties the table. The hashes stay: they depend only on
     * the tokens.
     */
    public void free(BlockTable table) {
        int[] ids = table.ids();
        for (int i = table.size() - 1; i >= 0; i--) {
            pool.free(ids[i]);
        }
        table.clear();
    }

    /**
     * Checks the reference counts against the live tables: each usable block's count equals the
     * number of tables holding it, and every unreferenced block is in the free queue. Returns a
     * description of the first violation, or null. For tests.
     */
    public String checkConsistency(Iterable<BlockTable> liveTables) {
        int[] held = new int[pool.numBlocks()];
        for (BlockTable table : liveTables) {
            for (int i = 0; i < table.size(); i++) {
                int block = table.get(i);
                if (block <= BlockPool.NULL_BLOCK || block >= pool.numBlocks()) {
                    return "table " + table + " holds invalid block " + block;
                }
                held[block]++;
            }
        }
        int free = 0;
        for (int block = 1; block < pool.numBlocks(); block++) {
            if (pool.refCount(block) != held[block]) {
                return "block " + block + " has reference count " + pool.refCount(block) + " but " + held[block]
                        + " tables hold it";
            }
            if (held[block] == 0) {
                free++;
            }
        }
        if (free != pool.numFreeBlocks()) {
            return free + " blocks are unreferenced but the free queue has " + pool.numFreeBlocks();
        }
        if (pool.freeQueue().length != free) {
            return "the free queue's links hold " + pool.freeQueue().length + " blocks, expected " + free;
        }
        return null;
    }
}
