package ai.kiln.grammar;

import java.util.Arrays;
import java.util.Comparator;

/**
 * A model's tokens as the byte strings they stand for, in the order a walk of their trie visits
 * them (sorted bytewise, each with its common prefix with the one before), so that tokens sharing
 * a prefix share the work of matching it. Tokens with no bytes (special tokens, ids past the
 * tokenizer's vocabulary) are never allowed by a grammar; the end-of-sequence ids are allowed
 * where the grammar is complete.
 */
public final class TokenVocabulary {

    private final int size;          // V: the model's vocabulary size (logits per row)
    private final byte[][] bytes;    // [V] each token's bytes; empty: never allowed
    private final int[] sorted;      // [numTokens] ids with bytes, sorted bytewise
    private final int[] commonPrefix; // [numTokens] bytes shared with the token sorted before (0 for the first)
    private final int[] endIds;      // end-of-sequence ids, each in [0, V)
    private final int maxLength;

    /**
     * @param bytes  [V] the bytes of each id (null or empty: none); copied
     * @param endIds the end-of-sequence ids (those outside [0, V) are dropped)
     */
    public TokenVocabulary(byte[][] bytes, int[] endIds) {
        this.size = bytes.length;
        this.endIds = Arrays.stream(endIds).filter(id -> id >= 0 && id < size).distinct().toArray();
        this.bytes = new byte[size][];
        int count = 0;
        int longest = 0;
        for (int id = 0; id < size; id++) {
            // NOTE: an end id never stands for text, even where it has bytes: it ends the sequence.
            this.bytes[id] = bytes[id] == null || isEnd(id) ? new byte[0] : bytes[id].clone();
            if (this.bytes[id].length > 0) {
                count++;
                longest = Math.max(longest, this.bytes[id].length);
            }
        }
        this.maxLength = longest;
        Integer[] order = new Integer[count];
        int k = 0;
        for (int id = 0; id < size; id++) {
            if (this.bytes[id].length > 0) {
                order[k++] = id;
            }
        }
        Comparator<Integer> bytewise = (a, b) -> Arrays.compareUnsigned(this.bytes[a], this.bytes[b]);
        Arrays.sort(order, bytewise.thenComparing(Comparator.naturalOrder()));
        sorted = new int[count];
        commonPrefix = new int[count];
        for (int i = 0; i < count; i++) {
            sorted[i] = order[i];
            if (i > 0) {
                byte[] a = this.bytes[sorted[i - 1]];
                byte[] b = this.bytes[sorted[i]];
                int m = Arrays.mismatch(a, b);
                commonPrefix[i] = m < 0 ? a.length : m;
            }
        }
    }

    /** V: ids are [0, size). */
    public int size() {
        return size;
    }

    /** Words of a token mask: one bit per id, id i at bit i % 32 of word i / 32. */
    public int maskWords() {
        return (size + 31) >>> 5;
    }

    /** The bytes of an id (empty for none); not to be changed. */
    byte[] bytes(int id) {
        return bytes[id];
    }

    int numSorted() {
        return sorted.length;
    }

    int sortedId(int i) {
        return sorted[i];
    }

    int commonPrefix(int i) {
        return commonPrefix[i];
    }

    int maxLength() {
        return maxLength;
    }

    /** The end-of-sequence ids; not to be changed. */
    int[] endIds() {
        return endIds;
    }

    boolean isEnd(int id) {
        for (int e : endIds) {
            if (e == id) {
                return true;
            }
        }
        return false;
    }
}
