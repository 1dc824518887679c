package ai.kiln.kvcache;

/**
 * The identity of a full KV-cache block for prefix caching: a 128-bit hash chained over the
 * parent block's hash and this block's token ids, so equal hashes mean equal whole prefixes (up
 * to a 2^-128 collision, which {@link BlockPool#lookup} further guards by comparing the block's own
 * tokens and its parent hash).
 *
 * @param high the first 64-bit lane
 * @param low  the second 64-bit lane, mixed with other constants
 */
public record BlockHash(long high, long low) {

    /** The parent of a sequence's first block. */
    public static final BlockHash ROOT = new BlockHash(0x6a09e667f3bcc908L, 0xbb67ae8584caa73bL);

    private static final long K1 = 0x9e3779b97f4a7c15L;
    private static final long K2 = 0xc2b2ae3d27d4eb4fL;

    /** The hash of the block holding {@code tokens[from, from + count)} whose parent hash is {@code parent}. */
    public static BlockHash of(BlockHash parent, int[] tokens, int from, int count) {
        long h1 = mix(parent.high ^ K1 * (count + 1));
        long h2 = mix(parent.low ^ K2 * (count + 1));
        for (int i = from; i < from + count; i++) {
            long t = tokens[i] & 0xffffffffL;
            // NOTE: the two lanes absorb each token with different multipliers and rotations (as
            // xxHash's rounds do) and are finalised with the full mix, so a collision would have to
            // hit two independent 64-bit lanes at once.
            h1 = Long.rotateLeft(h1 + t * K2, 31) * K1;
            h2 = Long.rotateLeft(h2 ^ (t * K1 + 0x632be59bd9b4e019L), 27) * K2 + 0x85ebca77c2b2ae63L;
        }
        h1 = mix(h1);
        return new BlockHash(h1, mix(h2 ^ Long.rotateLeft(h1, 17)));
    }

    /** The 64-bit finaliser of MurmurHash3: every input bit affects every output bit. */
    private static long mix(long z) {
        z = (z ^ (z >>> 33)) * 0xff51afd7ed558ccdL;
        z = (z ^ (z >>> 33)) * 0xc4ceb9fe1a85ec53L;
        return z ^ (z >>> 33);
    }

    @Override
    public String toString() {
        return String.format("%016x%016x", high, low);
    }
}
