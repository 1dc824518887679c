package ai.kiln.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A set of Unicode scalar values as sorted disjoint ranges, and its UTF-8 encodings as runs of
 * byte ranges (the split of RE2 and Rust's regex-syntax: a range of code points whose encodings
 * share a length and every byte position's range is one run). Surrogates are never members.
 */
final class CodePointSet {

    static final int MAX = 0x10FFFF;
    static final CodePointSet ANY = new CodePointSet(new int[] {0, 0xD7FF, 0xE000, MAX});

    private final int[] ranges; // [2 * numRanges] lo, hi inclusive, sorted, disjoint, not adjacent

    private CodePointSet(int[] ranges) {
        this.ranges = ranges;
    }

    static CodePointSet of(int c) {
        return range(c, c);
    }

    static CodePointSet range(int lo, int hi) {
        return new CodePointSet(new int[] {lo, hi}).minusSurrogates();
    }

    /** The union of ranges given as lo, hi pairs in any order. */
    static CodePointSet ofRanges(int... loHi) {
        return normalise(loHi.clone()).minusSurrogates();
    }

    boolean isEmpty() {
        return ranges.length == 0;
    }

    boolean contains(int c) {
        for (int k = 0; k < ranges.length; k += 2) {
            if (c >= ranges[k] && c <= ranges[k + 1]) {
                return true;
            }
        }
        return false;
    }

    /** [2 * numRanges] lo, hi pairs; not to be changed. */
    int[] ranges() {
        return ranges;
    }

    CodePointSet union(CodePointSet o) {
        int[] all = Arrays.copyOf(ranges, ranges.length + o.ranges.length);
        System.arraycopy(o.ranges, 0, all, ranges.length, o.ranges.length);
        return normalise(all);
    }

    CodePointSet complement() {
        List<Integer> out = new ArrayList<>();
        int next = 0;
        for (int k = 0; k < ranges.length; k += 2) {
            if (ranges[k] > next) {
                out.add(next);
                out.add(ranges[k] - 1);
            }
            next = ranges[k + 1] + 1;
        }
        if (next <= MAX) {
            out.add(next);
            out.add(MAX);
        }
        return new CodePointSet(out.stream().mapToInt(Integer::intValue).toArray()).minusSurrogates();
    }

    CodePointSet minus(CodePointSet o) {
        return complement().union(o).complement();
    }

    private CodePointSet minusSurrogates() {
        List<Integer> out = new ArrayList<>();
        for (int k = 0; k < ranges.length; k += 2) {
            int lo = ranges[k];
            int hi = ranges[k + 1];
            if (hi < 0xD800 || lo > 0xDFFF) {
                out.add(lo);
                out.add(hi);
                continue;
            }
            if (lo < 0xD800) {
                out.add(lo);
                out.add(0xD7FF);
            }
            if (hi > 0xDFFF) {
                out.add(0xE000);
                out.add(hi);
            }
        }
        return new CodePointSet(out.stream().mapToInt(Integer::intValue).toArray());
    }

    private static CodePointSet normalise(int[] loHi) {
        int n = loHi.length / 2;
        long[] packed = new long[n];
        for (int k = 0; k < n; k++) {
            int lo = loHi[2 * k];
            int hi = loHi[2 * k + 1];
            if (lo < 0 || hi > MAX || lo > hi) {
                throw new IllegalArgumentException("code point range [" + lo + ", " + hi + "]");
            }
            packed[k] = (long) lo << 32 | hi;
        }
        Arrays.sort(packed);
        List<Integer> out = new ArrayList<>();
        for (long p : packed) {
            int lo = (int) (p >>> 32);
            int hi = (int) p;
            int last = out.size() - 1;
            if (last > 0 && lo <= out.get(last) + 1) {
                out.set(last, Math.max(out.get(last), hi));
            } else {
                out.add(lo);
                out.add(hi);
            }
        }
        return new CodePointSet(out.stream().mapToInt(Integer::intValue).toArray());
    }

    /** The UTF-8 encodings of the set, each a run of byte ranges [lo0, hi0, lo1, hi1, ...]. */
    List<int[]> utf8Runs() {
        List<int[]> out = new ArrayList<>();
        for (int k = 0; k < ranges.length; k += 2) {
            split(ranges[k], ranges[k + 1], out);
        }
        return out;
    }

    private static void split(int lo, int hi, List<int[]> out) {
        if (lo > hi) {
            return;
        }
        for (int max : new int[] {0x7F, 0x7FF, 0xFFFF}) {
            if (lo <= max && max < hi) {
                split(lo, max, out);
                split(max + 1, hi, out);
                return;
            }
        }
        int n = length(lo);
        for (int i = 1; i < n; i++) {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m)) {
                if ((lo & m) != 0) {
                    split(lo, lo | m, out);
                    split((lo | m) + 1, hi, out);
                    return;
                }
                if ((hi & m) != m) {
                    split(lo, (hi & ~m) - 1, out);
                    split(hi & ~m, hi, out);
                    return;
                }
            }
        }
        byte[] a = encode(lo);
        byte[] b = encode(hi);
        int[] run = new int[2 * a.length];
        for (int i = 0; i < a.length; i++) {
            run[2 * i] = a[i] & 0xFF;
            run[2 * i + 1] = b[i] & 0xFF;
        }
        out.add(run);
    }

    private static int length(int c) {
        return c <= 0x7F ? 1 : c <= 0x7FF ? 2 : c <= 0xFFFF ? 3 : 4;
    }

    static byte[] encode(int c) {
        return new String(Character.toChars(c)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }
}
