package ai.kiln.sampling;

/** Pearson's chi-square goodness-of-fit test, with the p-value from the regularised gamma function. */
final class ChiSquare {

    private ChiSquare() {
    }

    /** The statistic of observed counts against expected probabilities (cells of probability 0 skipped). */
    static double statistic(long[] observed, double[] probabilities) {
        long total = 0;
        for (long o : observed) {
            total += o;
        }
        double chi = 0;
        for (int i = 0; i < observed.length; i++) {
            if (probabilities[i] > 0) {
                double expected = probabilities[i] * total;
                double diff = observed[i] - expected;
                chi += diff * diff / expected;
            }
        }
        return chi;
    }

    /** P(X >= statistic) for X chi-square with {@code df} degrees of freedom. */
    static double pValue(double statistic, int df) {
        return upperRegularizedGamma(df / 2.0, statistic / 2.0);
    }

    /** Q(a, x) = Gamma(a, x) / Gamma(a): series below a + 1, Lentz's continued fraction above. */
    static double upperRegularizedGamma(double a, double x) {
        if (x <= 0) {
            return 1.0;
        }
        double logPrefix = -x + a * Math.log(x) - logGamma(a);
        if (x < a + 1) {
            double term = 1.0 / a;
            double sum = term;
            for (int n = 1; n < 10_000 && Math.abs(term) > Math.abs(sum) * 1e-16; n++) {
                term *= x / (a + n);
                sum += term;
            }
            return 1.0 - sum * Math.exp(logPrefix);
        }
        double tiny = 1e-300;
        double b = x + 1 - a;
        double c = 1 / tiny;
        double d = 1 / b;
        double h = d;
        for (int i = 1; i < 10_000; i++) {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b;
            d = Math.abs(d) < tiny ? tiny : d;
            c = b + an / c;
            c = Math.abs(c) < tiny ? tiny : c;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.abs(delta - 1) < 1e-16) {
                break;
            }
        }
        return Math.exp(logPrefix) * h;
    }

    /** Lanczos' approximation (g = 7, 9 terms), good to about 15 digits for a > 0. */
    static double logGamma(double a) {
        double[] c = {0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7};
        if (a < 0.5) {
            return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * a))) - logGamma(1 - a);
        }
        a -= 1;
        double x = c[0];
        for (int i = 1; i < 9; i++) {
            x += c[i] / (a + i);
        }
        double t = a + 7.5;
        return 0.5 * Math.log(2 * Math.PI) + (a + 0.5) * Math.log(t) - t + Math.log(x);
    }
}
