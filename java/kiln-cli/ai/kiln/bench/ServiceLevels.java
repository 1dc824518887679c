package ai.kiln.bench;

import java.util.List;
import java.util.Locale;

/**
 * The service-level objectives of {@code kiln bench serve --goodput}: a request counts towards
 * goodput when it completed and met every objective given, as vLLM's benchmark counts it (its TTFT,
 * its TPOT, 0 for a one-token answer, and its end-to-end latency at most the bound). Milliseconds;
 * null: no bound on that metric.
 */
public record ServiceLevels(Double ttftMs, Double tpotMs, Double e2elMs) {

    /** Reads {@code ttft:MS tpot:MS e2el:MS} (any of them, in any order), as vLLM's --goodput takes them. */
    public static ServiceLevels parse(List<String> terms) {
        Double ttft = null, tpot = null, e2el = null;
        for (String term : terms) {
            int colon = term.indexOf(':');
            String name = colon < 0 ? "" : term.substring(0, colon).strip().toLowerCase(Locale.ROOT);
            double value;
            try {
                value = Double.parseDouble(term.substring(colon + 1).strip());
            } catch (NumberFormatException e) {
                value = Double.NaN;
            }
            if (colon < 0 || !(value > 0) || Double.isInfinite(value)) {
                throw new IllegalArgumentException("--goodput takes ttft:MS, tpot:MS or e2el:MS with MS a number > 0,"
                        + " got \"" + term + "\"");
            }
            switch (name) {
                case "ttft" -> ttft = value;
                case "tpot" -> tpot = value;
                case "e2el" -> e2el = value;
                default -> throw new IllegalArgumentException("--goodput knows ttft, tpot and e2el, got \"" + term + "\"");
            }
        }
        if (ttft == null && tpot == null && e2el == null) {
            throw new IllegalArgumentException("--goodput needs at least one of ttft:MS, tpot:MS, e2el:MS");
        }
        return new ServiceLevels(ttft, tpot, e2el);
    }

    /** Whether a completed request met every objective. */
    public boolean metBy(RequestOutcome outcome) {
        if (!outcome.success()) {
            return false;
        }
        double ttft = outcome.ttft() * 1e3;
        double e2el = outcome.latency() * 1e3;
        double tpot = outcome.tpot() * 1e3;
        return (ttftMs == null || ttft <= ttftMs) && (tpotMs == null || tpot <= tpotMs)
                && (e2elMs == null || e2el <= e2elMs);
    }

    /** The objectives as --goodput spells them, e.g. "ttft:500 tpot:50". */
    @Override
    public String toString() {
        StringBuilder out = new StringBuilder();
        if (ttftMs != null) {
            out.append("ttft:").append(ttftMs);
        }
        if (tpotMs != null) {
            out.append(out.isEmpty() ? "" : " ").append("tpot:").append(tpotMs);
        }
        if (e2elMs != null) {
            out.append(out.isEmpty() ? "" : " ").append("e2el:").append(e2elMs);
        }
        return out.toString();
    }
}
