package ai.kiln.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The block pool alone: free-queue order, reference counts, eviction of cached blocks. */
class BlockPoolTest {

    static final int BLOCK = 4;

    @Test
    void blockZeroIsReservedAndBlocksComeInIdOrder() {
        BlockPool pool = new BlockPool(8, BLOCK);
        assertEquals(7, pool.numUsableBlocks());
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7}, pool.freeQueue());
        int[] out = new int[3];
        pool.allocate(3, out, 0);
        assertArrayEquals(new int[] {1, 2, 3}, out);
        assertArrayEquals(new int[] {4, 5, 6, 7}, pool.freeQueue());
        assertEquals(1, pool.refCount(1));
        assertEquals(3.0 / 7, pool.usage(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> pool.free(0));
        assertThrows(IllegalArgumentException.class, () -> pool.touch(0));
    }

    @Test
    void freedBlocksJoinTheTailInTheGivenOrder() {
        BlockPool pool = new BlockPool(8, BLOCK);
        int[] out = new int[3];
        pool.allocate(3, out, 0);
        pool.free(new int[] {3, 2, 1}, 0, 3);
        assertArrayEquals(new int[] {4, 5, 6, 7, 3, 2, 1}, pool.freeQueue());
        assertEquals(7, pool.numFreeBlocks());
        assertThrows(IllegalStateException.class, () -> pool.free(1));
    }

    @Test
    void sharedBlockIsFreedOnlyByTheLastHolder() {
        BlockPool pool = new BlockPool(4, BLOCK);
        int[] out = new int[1];
        pool.allocate(1, out, 0);
        pool.touch(1);
        assertEquals(2, pool.refCount(1));
        pool.free(1);
        assertEquals(1, pool.refCount(1));
        assertArrayEquals(new int[] {2, 3}, pool.freeQueue());
        pool.free(1);
        assertArrayEquals(new int[] {2, 3, 1}, pool.freeQueue());
    }

    @Test
    void cachedFreeBlockIsRevivedByTouchAndEvictedWhenHandedOut() {
        BlockPool pool = new BlockPool(4, BLOCK);
        int[] tokens = {10, 11, 12, 13, 20, 21, 22, 23};
        int[] out = new int[2];
        pool.allocate(2, out, 0); // blocks 1, 2
        BlockHash h1 = BlockHash.of(BlockHash.ROOT, tokens, 0, BLOCK);
        BlockHash h2 = BlockHash.of(h1, tokens, BLOCK, BLOCK);
        assertTrue(pool.register(1, h1, BlockHash.ROOT, tokens, 0));
        assertTrue(pool.register(2, h2, h1, tokens, BLOCK));
        pool.free(new int[] {2, 1}, 0, 2);
        assertArrayEquals(new int[] {3, 2, 1}, pool.freeQueue());
        assertEquals(2, pool.numCachedBlocks());

        // A hit takes the idle block off the free queue.
        assertEquals(1, pool.lookup(h1, BlockHash.ROOT, tokens, 0));
        pool.touch(1);
        assertArrayEquals(new int[] {3, 2}, pool.freeQueue());

        // Handing out the queue head: block 3 (never cached), then block 2, which is evicted.
        pool.allocate(2, out, 0);
        assertArrayEquals(new int[] {3, 2}, out);
        assertEquals(1, pool.evictions());
        assertFalse(pool.isCached(2));
        assertEquals(-1, pool.lookup(h2, h1, tokens, BLOCK));
        assertTrue(pool.isCached(1));
    }

    @Test
    void lookupVerifiesTokensAndParent() {
        BlockPool pool = new BlockPool(4, BLOCK);
        int[] tokens = {1, 2, 3, 4};
        int[] other = {1, 2, 3, 5};
        int[] out = new int[1];
        pool.allocate(1, out, 0);
        BlockHash hash = BlockHash.of(BlockHash.ROOT, tokens, 0, BLOCK);
        pool.register(1, hash, BlockHash.ROOT, tokens, 0);
        assertEquals(1, pool.lookup(hash, BlockHash.ROOT, tokens, 0));
        // The same key with other tokens (as a hash collision would give) is not a hit.
        assertEquals(-1, pool.lookup(hash, BlockHash.ROOT, other, 0));
        assertEquals(-1, pool.lookup(hash, new BlockHash(1, 2), tokens, 0));
    }

    @Test
    void equalCopyOfACachedBlockStaysUnregistered() {
        BlockPool pool = new BlockPool(4, BLOCK);
        int[] tokens = {1, 2, 3, 4};
        int[] out = new int[2];
        pool.allocate(2, out, 0);
        BlockHash hash = BlockHash.of(BlockHash.ROOT, tokens, 0, BLOCK);
        assertTrue(pool.register(1, hash, BlockHash.ROOT, tokens, 0));
        assertFalse(pool.register(2, hash, BlockHash.ROOT, tokens, 0));
        assertFalse(pool.isCached(2));
        assertEquals(1, pool.numCachedBlocks());
    }

    @Test
    void hashChainsDifferByParentAndTokens() {
        int[] a = {1, 2, 3, 4, 5, 6, 7, 8};
        int[] b = {1, 2, 3, 9, 5, 6, 7, 8};
        BlockHash a1 = BlockHash.of(BlockHash.ROOT, a, 0, 4);
        BlockHash b1 = BlockHash.of(BlockHash.ROOT, b, 0, 4);
        assertFalse(a1.equals(b1));
        // Equal second blocks under different parents hash differently.
        assertFalse(BlockHash.of(a1, a, 4, 4).equals(BlockHash.of(b1, b, 4, 4)));
        assertEquals(BlockHash.of(a1, a, 4, 4), BlockHash.of(a1, b, 4, 4));
    }
}
