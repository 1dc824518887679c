package ai.kiln.tokenizer;

/**
 * Bounded cache of model output per pre-tokenized word, looked up by a region of the input
 * without allocating a key. Direct-mapped: a colliding word replaces the previous entry. Each slot
 * holds an immutable entry, so unsynchronized reads and writes from many threads are safe (a
 * reader sees either the old or the new entry, both correct).
 */
final class WordCache {
    /** Longest word, in chars, worth caching; longer words are rare and would crowd the cache. */
    static final int MAX_WORD_LENGTH = 48;

    private record Entry(String word, int hash, int[] ids) {
    }

    private final Entry[] slots;
    private final int mask;

    WordCache(int capacity) {
        if (Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two: " + capacity);
        }
        slots = new Entry[capacity];
        mask = capacity - 1;
    }

    static int hash(CharSequence text, int start, int end) {
        int h = 0;
        for (int i = start; i < end; i++) {
            h = 31 * h + text.charAt(i);
        }
        return h ^ (h >>> 16);
    }

    /** Cached ids of {@code text[start, end)} with the given {@link #hash}, or null. */
    int[] get(String text, int start, int end, int hash) {
        Entry entry = slots[hash & mask];
        if (entry != null && entry.hash == hash && entry.word.length() == end - start
                && entry.word.regionMatches(0, text, start, end - start)) {
            return entry.ids;
        }
        return null;
    }

    void put(String word, int hash, int[] ids) {
        slots[hash & mask] = new Entry(word, hash, ids);
    }
}
