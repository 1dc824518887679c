package ai.kiln.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The block manager with prefix caching, scripted in the manner of vLLM's
 * tests/v1/core/test_prefix_caching.py: exact block ids, reference counts and eviction order.
 * Block size 4, 10 usable blocks (ids 1..10). After each test every table is freed and the pool
 * must be whole again.
 */
class PrefixCachingTest {

    static final int BLOCK = 4;

    private final KvCacheManager kv = new KvCacheManager(11, BLOCK, true);
    private final List<BlockTable> live = new ArrayList<>();

    private static int[] range(int from, int to) {
        return IntStream.range(from, to).toArray();
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = new int[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** Admits a sequence: lookup, allocation for the whole prompt, then (after its "step") caching. */
    private BlockTable admit(int[] tokens) {
        BlockTable table = new BlockTable();
        KvCacheManager.PrefixHit hit = kv.findCachedPrefix(table, tokens, tokens.length);
        assertTrue(kv.allocateSlots(table, hit, tokens.length));
        kv.cacheFullBlocks(table, tokens, tokens.length);
        live.add(table);
        assertNull(kv.checkConsistency(live));
        return table;
    }

    private void free(BlockTable table) {
        kv.free(table);
        live.remove(table);
        assertNull(kv.checkConsistency(live));
    }

    @AfterEach
    void poolIsWholeAgain() {
        for (BlockTable table : new ArrayList<>(live)) {
            free(table);
        }
        BlockPool pool = kv.pool();
        assertEquals(pool.numUsableBlocks(), pool.numFreeBlocks());
        for (int block = 1; block < pool.numBlocks(); block++) {
            assertEquals(0, pool.refCount(block), "block " + block);
        }
    }

    @Test
    void prefillHitsFullBlocksAndCountsTokens() {
        int[] common = range(0, 12); // three full blocks
        BlockTable a = admit(concat(common, 100, 101));
        assertArrayEquals(new int[] {1, 2, 3, 4}, a.toArray());
        assertTrue(kv.pool().isCached(1) && kv.pool().isCached(2) && kv.pool().isCached(3));
        assertFalse(kv.pool().isCached(4), "a partial block is never cached");

        BlockTable b = admit(concat(common, 200, 201));
        assertArrayEquals(new int[] {1, 2, 3, 5}, b.toArray());
        assertEquals(2, kv.pool().refCount(1));
        assertEquals(2, kv.pool().refCount(3));
        assertEquals(1, kv.pool().refCount(5));
        // Queries count every prompt token looked up, hits the tokens supplied by the cache.
        assertEquals(14 + 14, kv.prefixCacheQueries());
        assertEquals(12, kv.prefixCacheHits());

        // Freeing A releases only its private tail; the shared blocks stay held by B.
        free(a);
        assertArrayEquals(new int[] {6, 7, 8, 9, 10, 4}, kv.pool().freeQueue());
        free(b);
        // B's blocks join the tail last-first: the tail of a sequence is evicted before its prefix.
        assertArrayEquals(new int[] {6, 7, 8, 9, 10, 4, 5, 3, 2, 1}, kv.pool().freeQueue());
    }

    @Test
    void freedCachedBlocksAreRevivedUntilEvictedInLruOrder() {
        int[] prompt = concat(range(0, 12), 100, 101);
        free(admit(prompt)); // queue: 5..10, then 4 3 2 1
        assertArrayEquals(new int[] {5, 6, 7, 8, 9, 10, 4, 3, 2, 1}, kv.pool().freeQueue());

        // An unrelated sequence takes blocks from the head: 5..10, no eviction.
        admit(range(1000, 1024));
        assertArrayEquals(new int[] {4, 3, 2, 1}, kv.pool().freeQueue());
        assertEquals(0, kv.pool().evictions());

        // The cached prefix is still there: a hit revives blocks 1, 2, 3 from the free queue.
        BlockTable again = admit(concat(range(0, 12), 300));
        assertArrayEquals(new int[] {1, 2, 3, 4}, again.toArray());
        assertEquals(0, kv.pool().evictions());
        free(again);
        assertArrayEquals(new int[] {4, 3, 2, 1}, kv.pool().freeQueue());

        // Running the pool low evicts the prefix's tail first: block 4 (never cached), then 3.
        BlockTable filler = admit(range(2000, 2007));
        assertArrayEquals(new int[] {4, 3}, filler.toArray());
        assertEquals(1, kv.pool().evictions());
        assertFalse(kv.pool().isCached(3));
        assertTrue(kv.pool().isCached(2));
        // Only the first two blocks of the prefix hit now.
        assertEquals(2, kv.findCachedPrefix(new BlockTable(), prompt, prompt.length).blocks().length);
    }

    @Test
    void atLeastTheLastTokenIsComputed() {
        int[] prompt = range(0, 8); // exactly two full blocks
        BlockTable a = admit(prompt);
        assertArrayEquals(new int[] {1, 2}, a.toArray());
        BlockTable b = new BlockTable();
        KvCacheManager.PrefixHit hit = kv.findCachedPrefix(b, prompt, prompt.length);
        // Two cached blocks, but the second holds the last token, whose logits are needed.
        assertArrayEquals(new int[] {1}, hit.blocks());
        assertTrue(kv.allocateSlots(b, hit, prompt.length));
        kv.cacheFullBlocks(b, prompt, prompt.length);
        live.add(b);
        assertArrayEquals(new int[] {1, 3}, b.toArray());
        // Block 3 holds the same tokens as block 2, which stays the cached copy.
        assertFalse(kv.pool().isCached(3));
        assertEquals(2, kv.pool().refCount(1));
    }

    @Test
    void aShortPromptNeverHits() {
        admit(range(0, 4));
        BlockTable b = new BlockTable();
        assertEquals(0, kv.findCachedPrefix(b, range(0, 4), 4).blocks().length);
    }

    @Test
    void decodeAppendsBlocksAndCachesThemWhenFull() {
        int[] tokens = new int[16];
        System.arraycopy(range(0, 6), 0, tokens, 0, 6);
        BlockTable table = admit(java.util.Arrays.copyOf(tokens, 6));
        assertArrayEquals(new int[] {1, 2}, table.toArray());
        // Decode tokens 6 and 7: block 2 becomes full once token 7 is computed.
        for (int n = 7; n <= 9; n++) {
            tokens[n - 1] = 50 + n;
            assertTrue(kv.allocateSlots(table, null, n));
            kv.cacheFullBlocks(table, tokens, n);
        }
        assertArrayEquals(new int[] {1, 2, 3}, table.toArray());
        assertTrue(kv.pool().isCached(2));
        assertFalse(kv.pool().isCached(3));
    }

    @Test
    void allocationFailsWithoutSideEffectsWhenBlocksRunOut() {
        BlockTable big = admit(range(0, 36)); // 9 blocks, 1 left
        BlockTable table = new BlockTable();
        assertFalse(kv.allocateSlots(table, null, 8));
        assertEquals(0, table.size());
        assertEquals(1, kv.pool().numFreeBlocks());
        assertTrue(kv.allocateSlots(table, null, 4));
        live.add(table);
        assertFalse(kv.canAllocate(table, 5));
        assertEquals(9, big.size());
    }

    @Test
    void revivingIdleHitBlocksCountsAgainstTheFreeBlocks() {
        int[] prompt = concat(range(0, 12), 7);
        free(admit(prompt)); // blocks 1..4 idle, 1..3 cached
        BlockTable filler = admit(range(500, 524)); // takes 6 of the 10 free blocks: 5..10
        assertEquals(4, kv.pool().numFreeBlocks());
        // The hit's three idle blocks plus one new block use up all four free ones.
        BlockTable b = new BlockTable();
        KvCacheManager.PrefixHit hit = kv.findCachedPrefix(b, concat(range(0, 12), 8, 9, 10, 11, 12), 17);
        assertEquals(3, hit.blocks().length);
        assertFalse(kv.allocateSlots(b, hit, 17), "3 revived + 2 new blocks > 4 free");
        assertTrue(kv.allocateSlots(b, hit, 16));
        live.add(b);
        assertEquals(0, kv.pool().numFreeBlocks());
        assertEquals(6, filler.size());
    }

    @Test
    void forkSharesFullPromptBlocks() {
        int[] prompt = concat(range(0, 8), 42, 43);
        BlockTable parent = admit(prompt);
        assertArrayEquals(new int[] {1, 2, 3}, parent.toArray());
        BlockTable child = new BlockTable();
        kv.fork(parent, child, 2);
        live.add(child);
        assertTrue(kv.allocateSlots(child, null, prompt.length));
        assertArrayEquals(new int[] {1, 2, 4}, child.toArray());
        assertEquals(2, kv.pool().refCount(1));
        assertEquals(2, kv.pool().refCount(2));
        assertEquals(1, kv.pool().refCount(3));
        assertNull(kv.checkConsistency(live));
    }

    @Test
    void withoutPrefixCachingNothingIsShared() {
        KvCacheManager plain = new KvCacheManager(11, BLOCK, false);
        int[] prompt = range(0, 12);
        BlockTable a = new BlockTable();
        assertTrue(plain.allocateSlots(a, plain.findCachedPrefix(a, prompt, 12), 12));
        plain.cacheFullBlocks(a, prompt, 12);
        BlockTable b = new BlockTable();
        KvCacheManager.PrefixHit hit = plain.findCachedPrefix(b, prompt, 12);
        assertEquals(0, hit.blocks().length);
        assertTrue(plain.allocateSlots(b, hit, 12));
        assertArrayEquals(new int[] {4, 5, 6}, b.toArray());
        assertEquals(0, plain.prefixCacheQueries());
        plain.free(a);
        plain.free(b);
        assertEquals(10, plain.pool().numFreeBlocks());
        assertEquals(0, plain.pool().numCachedBlocks());
    }
}
