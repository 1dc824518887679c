package ai.kiln.tokenizer;

import java.util.Arrays;

/** Growable list of primitive ints, to collect ids without boxing. */
final class IntList {
    private int[] values;
    private int size;

    IntList(int capacity) {
        values = new int[Math.max(4, capacity)];
    }

    void add(int value) {
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
        }
        values[size++] = value;
    }

    void addAll(int[] more) {
        addAll(more, 0, more.length);
    }

    void addAll(int[] more, int from, int to) {
        int count = to - from;
        if (size + count > values.length) {
            values = Arrays.copyOf(values, Math.max(size + count, size * 2));
        }
        System.arraycopy(more, from, values, size, count);
        size += count;
    }

    int get(int index) {
        if (index >= size) {
            throw new IndexOutOfBoundsException(index + " >= " + size);
        }
        return values[index];
    }

    void set(int index, int value) {
        if (index >= size) {
            throw new IndexOutOfBoundsException(index + " >= " + size);
        }
        values[index] = value;
    }

    int size() {
        return size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    void clear() {
        size = 0;
    }

    int[] toArray() {
        return Arrays.copyOf(values, size);
    }
}
