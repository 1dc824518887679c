package ai.kiln.sampling;

import java.util.Arrays;

/**
 * Occurrences of token ids in a sequence, for the penalties: an open-addressing int -> int map,
 * so a sequence pays for the distinct tokens it has seen rather than for the vocabulary.
 */
final class TokenCounts {

    private static final int EMPTY = -1;

    private int[] keys = filled(16);   // [capacity] token id or EMPTY
    private int[] counts = new int[16]; // [capacity]
    private int size;

    private static int[] filled(int capacity) {
        int[] a = new int[capacity];
        Arrays.fill(a, EMPTY);
        return a;
    }

    void add(int token) {
        if ((size + 1) * 2 > keys.length) {
            grow();
        }
        int i = indexOf(keys, token);
        if (keys[i] == EMPTY) {
            keys[i] = token;
            size++;
        }
        counts[i]++;
    }

    int get(int token) {
        int i = indexOf(keys, token);
        return keys[i] == EMPTY ? 0 : counts[i];
    }

    int size() {
        return size;
    }

    /** Calls back with each (token, count). */
    void forEach(Visitor visitor) {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != EMPTY) {
                visitor.visit(keys[i], counts[i]);
            }
        }
    }

    interface Visitor {
        void visit(int token, int count);
    }

    private static int indexOf(int[] keys, int token) {
        int mask = keys.length - 1;
        int h = token * 0x9E3779B9;
        int i = (h ^ h >>> 16) & mask;
        while (keys[i] != EMPTY && keys[i] != token) {
            i = (i + 1) & mask;
        }
        return i;
    }

    private void grow() {
        int[] oldKeys = keys;
        int[] oldCounts = counts;
        keys = filled(oldKeys.length * 2);
        counts = new int[keys.length];
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != EMPTY) {
                int j = indexOf(keys, oldKeys[i]);
                keys[j] = oldKeys[i];
                counts[j] = oldCounts[i];
            }
        }
    }
}
