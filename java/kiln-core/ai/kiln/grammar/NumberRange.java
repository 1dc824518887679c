package ai.kiln.grammar;

/**
 * The JSON numbers within integer bounds (each end inclusive, exclusive or open), written without
 * an exponent: -?(0|[1-9][0-9]*)(.[0-9]+)?. A number's value is its sign times I + F, I its
 * integer part and F in [0, 1) its fraction, so that against an integer bound c: I + F >= c when I
 * >= c; I + F > c when I > c, or I = c and F > 0; I + F <= c when I < c, or I = c and F = 0;
 * I + F < c when I < c. Negative numbers bound their magnitude the other way round, and never
 * have magnitude 0 (a "-0.0" would be 0, which an exclusive bound at 0 forbids).
 */
final class NumberRange {

    /** One end of a range: the bound, and whether it is exclusive; null for an open end. */
    record End(long value, boolean exclusive) {
    }

    private NumberRange() {
    }

    /** Emits the numbers in the range from {@code at}; returns the state after one. */
    static int emit(GrammarBuilder.Rule r, int at, End lower, End upper) {
        int end = r.state();
        // x >= 0: the magnitude bounded as x is, the lower end only where it is above 0.
        End magLower = lower == null || lower.value() < 0 || (lower.value() == 0 && !lower.exclusive()) ? null : lower;
        if (upper == null || upper.value() > 0 || (upper.value() == 0 && !upper.exclusive())) {
            magnitudes(r, at, end, magLower, upper, false);
        }
        // x < 0: magnitude m = -x > 0, with x >= L as m <= -L and x <= H as m >= -H.
        if (lower == null || lower.value() < 0) {
            End mUpper = lower == null ? null : new End(-lower.value(), lower.exclusive());
            End mLower = upper == null || upper.value() >= 0 ? null : new End(-upper.value(), upper.exclusive());
            int minus = r.state();
            r.bytes(at, '-', '-', minus);
            magnitudes(r, minus, end, mLower, mUpper, true);
        }
        return end;
    }

    /** Magnitudes I + F within the bounds (positive: above 0), from {@code at} to {@code end}. */
    private static void magnitudes(GrammarBuilder.Rule r, int at, int end, End lower, End upper, boolean positive) {
        long lowI = lower == null ? 0 : lower.exclusive() ? lower.value() + 1 : lower.value();
        Long highI = upper == null ? null : upper.value() - 1;
        // I in [lowI, highI], any fraction (I = 0 needs a non-zero fraction when positive).
        long from = positive && lowI == 0 ? 1 : lowI;
        if (highI == null || highI >= from) {
            r.epsilon(anyFraction(r, IntegerRange.emit(r, at, from, highI)), end);
        }
        if (positive && lowI == 0 && (highI == null || highI >= 0)) {
            r.epsilon(nonZeroFraction(r, IntegerRange.emit(r, at, 0L, 0L)), end);
        }
        // I = L, F > 0 above an exclusive lower bound L (below an upper bound past L).
        if (lower != null && lower.exclusive() && (upper == null || upper.value() > lower.value())) {
            r.epsilon(nonZeroFraction(r, IntegerRange.emit(r, at, lower.value(), lower.value())), end);
        }
        // I = H, F = 0 at an inclusive upper bound H (above the lower bound, and not 0 when positive).
        if (upper != null && !upper.exclusive() && (lower == null || upper.value() > lower.value()
                || (upper.value() == lower.value() && !lower.exclusive())) && !(positive && upper.value() == 0)) {
            r.epsilon(zeroFraction(r, IntegerRange.emit(r, at, upper.value(), upper.value())), end);
        }
    }

    /** An optional fraction of any digits. */
    private static int anyFraction(GrammarBuilder.Rule r, int at) {
        int end = r.state();
        r.epsilon(at, end);
        int dot = r.state();
        r.bytes(at, '.', '.', dot);
        int digits = r.state();
        r.bytes(dot, '0', '9', digits);
        r.bytes(digits, '0', '9', digits);
        r.epsilon(digits, end);
        return end;
    }

    /** A fraction with a non-zero digit. */
    private static int nonZeroFraction(GrammarBuilder.Rule r, int at) {
        int dot = r.state();
        r.bytes(at, '.', '.', dot);
        int zeros = r.state();
        r.epsilon(dot, zeros);
        r.bytes(zeros, '0', '0', zeros);
        int nonZero = r.state();
        r.bytes(zeros, '1', '9', nonZero);
        r.bytes(nonZero, '0', '9', nonZero);
        return nonZero;
    }

    /** Nothing, or a fraction of zeros. */
    private static int zeroFraction(GrammarBuilder.Rule r, int at) {
        int end = r.state();
        r.epsilon(at, end);
        int dot = r.state();
        r.bytes(at, '.', '.', dot);
        int zeros = r.state();
        r.bytes(dot, '0', '0', zeros);
        r.bytes(zeros, '0', '0', zeros);
        r.epsilon(zeros, end);
        return end;
    }
}
