package ai.kiln.tokenizer;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Byte-pair encoding with Hugging Face's exact semantics: a word starts as one symbol per
 * character (or per byte, for byte-level vocabularies), then the adjacent pair with the lowest
 * merge rank is merged, leftmost first, until no pair has a merge. Characters missing from the
 * vocabulary become byte tokens ({@code <0xNN>}) with byte fallback, else the unknown token.
 */
final class BpeModel {
    /** Options of the "model" section besides vocabulary and merges. */
    record Options(String unkToken, boolean fuseUnk, boolean byteFallback, String continuingSubwordPrefix,
                   String endOfWordSuffix, boolean ignoreMerges) {
    }

    private final Map<String, Integer> vocab;
    private final String[] idToToken;
    private final MergeTable merges;
    private final Options options;
    /** Id of each single-code-point token in the BMP, or -1; used when no prefix/suffix applies. */
    private final int[] bmpCharIds;
    private final Map<Integer, Integer> supplementaryCharIds;
    /** Id of the byte-level alphabet token for each byte, or -1. */
    private final int[] byteLevelIds = new int[256];
    /** Id of "<0xNN>" for each byte, or -1. */
    private final int[] byteFallbackIds = new int[256];
    private final boolean plainCharacters;
    /**
     * Words already tokenized; null when disabled. Sized by the system property
     * {@value #CACHE_PROPERTY} (entries, a power of two; 0 disables), read when a tokenizer loads.
     */
    private final WordCache cache;
    static final String CACHE_PROPERTY = "kiln.tokenizer.wordCacheEntries";

    BpeModel(Map<String, Integer> vocab, MergeTable merges, Options options) {
        this.vocab = new HashMap<>(vocab);
        this.merges = merges;
        this.options = options;
        int maxId = vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1);
        idToToken = new String[maxId + 1];
        bmpCharIds = new int[0x10000];
        Arrays.fill(bmpCharIds, -1);
        supplementaryCharIds = new HashMap<>();
        for (Map.Entry<String, Integer> entry : vocab.entrySet()) {
            String token = entry.getKey();
            int id = entry.getValue();
            if (id < 0) {
                throw new IllegalArgumentException("negative id " + id + " for token " + token);
            }
            idToToken[id] = token;
            if (token.codePointCount(0, token.length()) == 1) {
                int cp = token.codePointAt(0);
                if (cp < 0x10000) {
                    bmpCharIds[cp] = id;
                } else {
                    supplementaryCharIds.put(cp, id);
                }
            }
        }
        for (int b = 0; b < 256; b++) {
            Integer byteLevel = vocab.get(String.valueOf(ByteLevelAlphabet.charOf(b)));
            byteLevelIds[b] = byteLevel == null ? -1 : byteLevel;
            Integer fallback = vocab.get(String.format("<0x%02X>", b));
            byteFallbackIds[b] = fallback == null ? -1 : fallback;
        }
        plainCharacters = isEmpty(options.continuingSubwordPrefix()) && isEmpty(options.endOfWordSuffix());
        int cacheEntries = Integer.getInteger(CACHE_PROPERTY, 1 << 16);
        cache = cacheEntries > 0 ? new WordCache(Integer.highestOneBit(cacheEntries)) : null;
    }

    private static boolean isEmpty(String s) {
        return s == null || s.isEmpty();
    }

    int vocabSize() {
        return vocab.size();
    }

    Integer tokenToId(String token) {
        return vocab.get(token);
    }

    /** The token for an id of the model's vocabulary, or null. */
    String idToToken(int id) {
        return id >= 0 && id < idToToken.length ? idToToken[id] : null;
    }

    /** One more than the largest id of the model's vocabulary. */
    int idLimit() {
        return idToToken.length;
    }

    /** Per-encode working memory, so that words do not allocate their symbol arrays. */
    static final class Scratch {
        int[] ids = new int[64];
        int[] next = new int[64];
        int[] prev = new int[64];
        boolean[] removed = new boolean[64];
        /** The packed merge of the pair starting at each position, or MergeTable.NONE. */
        long[] mergeAt = new long[64];
        /** Holds at most 2n - 2 candidates for n symbols: each merge pops one and pushes at most two. */
        long[] heap = new long[128];
        final IntList word = new IntList(64);
        int symbolCount;

        /** Grows the arrays to hold {@code symbols} symbols, keeping the ids written so far. */
        void ensureCapacity(int symbols) {
            if (ids.length < symbols) {
                int capacity = Math.max(symbols, ids.length * 2);
                ids = Arrays.copyOf(ids, capacity);
                next = new int[capacity];
                prev = new int[capacity];
                removed = new boolean[capacity];
                mergeAt = new long[capacity];
                heap = new long[capacity * 2];
            }
        }
    }

    /**
     * Tokenizes the word {@code text[start, end)}, appending ids to {@code out}. With
     * {@code byteLevel}, the word is first mapped to the byte-level alphabet (the deferred last
     * step of a ByteLevel pre-tokenizer); cached results are keyed by the unmapped text.
     */
    void tokenize(String text, int start, int end, boolean byteLevel, IntList out, Scratch scratch) {
        if (end == start) {
            return;
        }
        int length = end - start;
        boolean cacheable = cache != null && length <= WordCache.MAX_WORD_LENGTH;
        int hash = 0;
        if (cacheable) {
            hash = WordCache.hash(text, start, end);
            int[] cached = cache.get(text, start, end, hash);
            if (cached != null) {
                out.addAll(cached);
                return;
            }
        }
        IntList result = scratch.word;
        result.clear();
        if (!byteLevel || !plainCharacters || options.byteFallback() || !byteLevelSymbols(text, start, end, scratch)) {
            String word = byteLevel ? ByteLevelAlphabet.map(text, start, end) : text.substring(start, end);
            Integer whole = options.ignoreMerges() ? vocab.get(word) : null;
            if (whole != null) {
                result.add(whole);
            } else {
                mergeSymbols(initialSymbols(word, scratch), scratch, result);
            }
        } else {
            mergeSymbols(scratch.symbolCount, scratch, result);
            // ignore_merges: a word that is itself a token is that token. When the merges end in
            // one symbol it already is; only a multi-token result needs the whole-word lookup.
            if (options.ignoreMerges() && result.size() > 1) {
                Integer whole = vocab.get(ByteLevelAlphabet.map(text, start, end));
                if (whole != null) {
                    result.clear();
                    result.add(whole);
                }
            }
        }
        if (cacheable) {
            int[] ids = result.toArray();
            cache.put(text.substring(start, end), hash, ids);
            out.addAll(ids);
        } else {
            for (int i = 0; i < result.size(); i++) {
                out.add(result.get(i));
            }
        }
    }

    /**
     * Writes the byte-level symbol ids of {@code text[start, end)} (one per UTF-8 byte) into the
     * scratch arrays; false if some byte has no token, in which case the general path handles it.
     */
    private boolean byteLevelSymbols(String text, int start, int end, Scratch scratch) {
        scratch.ensureCapacity((end - start) * 4);
        int[] ids = scratch.ids;
        int n = 0;
        for (int i = start; i < end; i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                ids[n++] = byteLevelIds[c];
            } else if (c < 0x800) {
                ids[n++] = byteLevelIds[0xC0 | (c >> 6)];
                ids[n++] = byteLevelIds[0x80 | (c & 0x3F)];
            } else if (Character.isHighSurrogate(c) && i + 1 < end && Character.isLowSurrogate(text.charAt(i + 1))) {
                int cp = Character.toCodePoint(c, text.charAt(++i));
                ids[n++] = byteLevelIds[0xF0 | (cp >> 18)];
                ids[n++] = byteLevelIds[0x80 | ((cp >> 12) & 0x3F)];
                ids[n++] = byteLevelIds[0x80 | ((cp >> 6) & 0x3F)];
                ids[n++] = byteLevelIds[0x80 | (cp & 0x3F)];
            } else {
                ids[n++] = byteLevelIds[0xE0 | (c >> 12)];
                ids[n++] = byteLevelIds[0x80 | ((c >> 6) & 0x3F)];
                ids[n++] = byteLevelIds[0x80 | (c & 0x3F)];
            }
        }
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0) {
                return false;
            }
        }
        scratch.symbolCount = n;
        return true;
    }

    /** Hugging Face's BPE::merge_word up to the merges: characters to ids, unknowns, byte fallback. */
    private int initialSymbols(String word, Scratch scratch) {
        int maxSymbols = Utf8.encodedLength(word) + 2;
        scratch.ensureCapacity(maxSymbols);
        int[] ids = scratch.ids;
        int count = 0;
        int pendingUnk = -1;
        String prefix = options.continuingSubwordPrefix();
        String suffix = options.endOfWordSuffix();
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            int next = i + Character.charCount(cp);
            int id;
            String symbol = null;
            if (plainCharacters) {
                id = cp < 0x10000 ? bmpCharIds[cp] : supplementaryCharIds.getOrDefault(cp, -1);
            } else {
                symbol = word.substring(i, next);
                if (i > 0 && prefix != null) {
                    symbol = prefix + symbol;
                }
                if (next == word.length() && suffix != null) {
                    symbol = symbol + suffix;
                }
                Integer found = vocab.get(symbol);
                id = found == null ? -1 : found;
            }
            i = next;
            if (id >= 0) {
                if (pendingUnk >= 0) {
                    ids[count++] = pendingUnk;
                    pendingUnk = -1;
                }
                ids[count++] = id;
                continue;
            }
            if (options.byteFallback()) {
                byte[] bytes = Utf8.encode(symbol != null ? symbol : new String(Character.toChars(cp)));
                boolean allPresent = true;
                for (byte b : bytes) {
                    allPresent &= byteFallbackIds[b & 0xFF] >= 0;
                }
                if (allPresent) {
                    scratch.ensureCapacity(count + bytes.length + (word.length() - i) * 4 + 2);
                    ids = scratch.ids;
                    for (byte b : bytes) {
                        ids[count++] = byteFallbackIds[b & 0xFF];
                    }
                    // Like Hugging Face, a pending unknown is not flushed before byte tokens.
                    continue;
                }
            }
            if (options.unkToken() != null) {
                Integer unk = vocab.get(options.unkToken());
                if (unk == null) {
                    throw new IllegalStateException("the unknown token " + options.unkToken() + " is not in the vocabulary");
                }
                if (pendingUnk >= 0 && !options.fuseUnk()) {
                    ids[count++] = pendingUnk;
                }
                pendingUnk = unk;
            }
        }
        if (pendingUnk >= 0) {
            ids[count++] = pendingUnk;
        }
        return count;
    }

    /**
     * Hugging Face's Word::merge_all: a min-heap of (rank, position) candidates; stale entries
     * (a side already merged away, or the pair changed) are skipped when popped.
     */
    private void mergeSymbols(int count, Scratch scratch, IntList out) {
        int[] ids = scratch.ids;
        int[] next = scratch.next;
        int[] prev = scratch.prev;
        boolean[] removed = scratch.removed;
        long[] mergeAt = scratch.mergeAt;
        long[] heap = scratch.heap;
        int heapSize = 0;
        for (int i = 0; i < count; i++) {
            next[i] = i + 1;
            prev[i] = i - 1;
            removed[i] = false;
            mergeAt[i] = MergeTable.NONE;
        }
        for (int i = 0; i + 1 < count; i++) {
            long merge = merges.get(ids[i], ids[i + 1]);
            mergeAt[i] = merge;
            if (merge != MergeTable.NONE && count > SCAN_LIMIT) {
                heapSize = push(heap, heapSize, MergeTable.rankOf(merge), i);
            }
        }
        if (count <= SCAN_LIMIT) {
            mergeByScan(count, scratch, out);
            return;
        }
        while (heapSize > 0) {
            long top = heap[0];
            heapSize = pop(heap, heapSize);
            int rank = (int) (top >>> 32);
            int pos = (int) top;
            // Stale entries: the left symbol was merged away, or its pair changed since the push.
            // mergeAt always holds the current pair's merge, which spares a table lookup here.
            long merge = mergeAt[pos];
            if (removed[pos] || merge == MergeTable.NONE || MergeTable.rankOf(merge) != rank) {
                continue;
            }
            int right = next[pos];
            ids[pos] = MergeTable.mergedIdOf(merge);
            removed[right] = true;
            int after = next[right];
            next[pos] = after;
            if (after < count) {
                prev[after] = pos;
            }
            int before = prev[pos];
            if (before >= 0) {
                long left = merges.get(ids[before], ids[pos]);
                mergeAt[before] = left;
                if (left != MergeTable.NONE) {
                    heapSize = push(heap, heapSize, MergeTable.rankOf(left), before);
                }
            }
            long following = after < count ? merges.get(ids[pos], ids[after]) : MergeTable.NONE;
            mergeAt[pos] = following;
            if (following != MergeTable.NONE) {
                heapSize = push(heap, heapSize, MergeTable.rankOf(following), pos);
            }
        }
        for (int i = 0; i < count; i = next[i]) {
            out.add(ids[i]);
        }
    }

    /**
     * Below this many symbols, finding the lowest-ranked pair by scanning beats a heap. Both pick
     * the pair with the lowest rank, leftmost among equals, so the results are the same.
     */
    private static final int SCAN_LIMIT = 24;

    /** {@link #mergeSymbols} for short words, with mergeAt already filled. */
    private void mergeByScan(int count, Scratch scratch, IntList out) {
        int[] ids = scratch.ids;
        int[] next = scratch.next;
        int[] prev = scratch.prev;
        long[] mergeAt = scratch.mergeAt;
        while (true) {
            int bestRank = Integer.MAX_VALUE;
            int pos = -1;
            for (int i = 0; i < count; i = next[i]) {
                long merge = mergeAt[i];
                if (merge != MergeTable.NONE && MergeTable.rankOf(merge) < bestRank) {
                    bestRank = MergeTable.rankOf(merge);
                    pos = i;
                }
            }
            if (pos < 0) {
                break;
            }
            int right = next[pos];
            ids[pos] = MergeTable.mergedIdOf(mergeAt[pos]);
            int after = next[right];
            next[pos] = after;
            if (after < count) {
                prev[after] = pos;
            }
            int before = prev[pos];
            if (before >= 0) {
                mergeAt[before] = merges.get(ids[before], ids[pos]);
            }
            mergeAt[pos] = after < count ? merges.get(ids[pos], ids[after]) : MergeTable.NONE;
        }
        for (int i = 0; i < count; i = next[i]) {
            out.add(ids[i]);
        }
    }

    private static int push(long[] heap, int size, int rank, int position) {
        long entry = ((long) rank << 32) | position;
        int i = size;
        heap[i] = entry;
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (heap[parent] <= entry) {
                break;
            }
            heap[i] = heap[parent];
            heap[parent] = entry;
            i = parent;
        }
        return size + 1;
    }

    private static int pop(long[] heap, int size) {
        int last = size - 1;
        long moved = heap[last];
        int i = 0;
        while (true) {
            int child = 2 * i + 1;
            if (child >= last) {
                break;
            }
            if (child + 1 < last && heap[child + 1] < heap[child]) {
                child++;
            }
            if (heap[child] >= moved) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = moved;
        return last;
    }
}
