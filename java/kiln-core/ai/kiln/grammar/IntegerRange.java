package ai.kiln.grammar;

/**
 * The JSON integers in a range [min, max] (either end may be open) as an automaton: no leading
 * zeros, a minus only on negative values. Numbers of one length are split the usual way of range
 * regular expressions: the first digit fixed at the low end, free in the middle, fixed at the high
 * end, the rest recursively.
 */
final class IntegerRange {

    private IntegerRange() {
    }

    /**
     * Emits the integers in [min, max] from {@code at}; returns the state after one. A null end is
     * open. Bounds must satisfy min <= max and lie within a long's range minus one.
     */
    static int emit(GrammarBuilder.Rule r, int at, Long min, Long max) {
        int end = r.state();
        // Non-negative part: [max(min, 0), max].
        long lo = min == null ? 0 : Math.max(min, 0);
        if (max == null || max >= lo) {
            r.epsilon(magnitudes(r, at, lo, max), end);
        }
        // Negative part: -[magnitude], magnitudes in [max(-max, 1), -min].
        if (min == null || min < 0) {
            long magLo = max == null ? 1 : Math.max(1, -max);
            Long magHi = min == null ? null : -min;
            if (magHi == null || magHi >= magLo) {
                int minus = r.state();
                r.bytes(at, '-', '-', minus);
                r.epsilon(magnitudes(r, minus, magLo, magHi), end);
            }
        }
        return end;
    }

    /** Non-negative integers in [lo, hi] (hi null: unbounded), without leading zeros. */
    private static int magnitudes(GrammarBuilder.Rule r, int at, long lo, Long hi) {
        int end = r.state();
        String a = Long.toString(lo);
        int maxLength = hi == null ? a.length() : Long.toString(hi).length();
        for (int length = a.length(); length <= maxLength; length++) {
            String from = length == a.length() ? a : "1" + "0".repeat(length - 1);
            String to = hi != null && length == maxLength ? Long.toString(hi) : "9".repeat(length);
            r.epsilon(sameLength(r, at, from, to), end);
        }
        if (hi == null) {
            // Every longer number: a non-zero digit, then at least a.length() more digits.
            int s = r.state();
            r.bytes(at, '1', '9', s);
            for (int i = 0; i < a.length(); i++) {
                int next = r.state();
                r.bytes(s, '0', '9', next);
                s = next;
            }
            int loop = r.state();
            r.epsilon(s, loop);
            int digit = r.state();
            r.bytes(loop, '0', '9', digit);
            r.epsilon(digit, loop);
            r.epsilon(loop, end);
        }
        return end;
    }

    /** Digit strings of one length n between from and to (both of length n, from <= to). */
    private static int sameLength(GrammarBuilder.Rule r, int at, String from, String to) {
        int n = from.length();
        if (from.equals("0".repeat(n)) && to.equals("9".repeat(n))) {
            int s = at;
            for (int i = 0; i < n; i++) {
                int next = r.state();
                r.bytes(s, '0', '9', next);
                s = next;
            }
            return s;
        }
        char f = from.charAt(0);
        char t = to.charAt(0);
        if (n == 1) {
            int end = r.state();
            r.bytes(at, f, t, end);
            return end;
        }
        String restFrom = from.substring(1);
        String restTo = to.substring(1);
        if (f == t) {
            int next = r.state();
            r.bytes(at, f, f, next);
            return sameLength(r, next, restFrom, restTo);
        }
        int end = r.state();
        int low = r.state();
        r.bytes(at, f, f, low);
        r.epsilon(sameLength(r, low, restFrom, "9".repeat(n - 1)), end);
        if (t - f >= 2) {
            int mid = r.state();
            r.bytes(at, f + 1, t - 1, mid);
            r.epsilon(sameLength(r, mid, "0".repeat(n - 1), "9".repeat(n - 1)), end);
        }
        int high = r.state();
        r.bytes(at, t, t, high);
        r.epsilon(sameLength(r, high, "0".repeat(n - 1), restTo), end);
        return end;
    }
}
