package ai.kiln.engine;

import java.util.List;

/**
 * Stop strings over a completion's growing text: the earliest match, and how much of the text's
 * end must be held back from a stream because it could still become a stop string.
 */
final class StopStrings {

    /** A match: the stop string and where it starts in the text. */
    record Match(int start, String stop) {
    }

    private final List<String> stops;
    private final int maxLength;

    StopStrings(List<String> stops) {
        this.stops = List.copyOf(stops);
        this.maxLength = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    boolean isEmpty() {
        return stops.isEmpty();
    }

    /**
     * The earliest stop string in {@code text} that ends at or after {@code newFrom} (text before
     * it was searched already), or null. A stop string split over several tokens is found once its
     * last character arrives.
     */
    Match find(CharSequence text, int newFrom) {
        if (stops.isEmpty()) {
            return null;
        }
        int from = Math.max(0, newFrom - maxLength + 1);
        // NOTE: only the tail where a new match can lie is copied: the whole text, once a token,
        // would make a long completion's stop checks quadratic in its length.
        String tail = text.subSequence(from, text.length()).toString();
        Match best = null;
        for (String stop : stops) {
            int at = tail.indexOf(stop);
            if (at >= 0 && (best == null || from + at < best.start)) {
                best = new Match(from + at, stop);
            }
        }
        return best;
    }

    /** Characters at the end of {@code text} that are the start of some stop string (not a whole one). */
    int holdBack(CharSequence text) {
        int best = 0;
        int n = text.length();
        for (String stop : stops) {
            for (int k = Math.min(stop.length() - 1, n); k > best; k--) {
                if (endsWith(text, n, stop, k)) {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }

    private static boolean endsWith(CharSequence text, int n, String stop, int k) {
        for (int i = 0; i < k; i++) {
            if (text.charAt(n - k + i) != stop.charAt(i)) {
                return false;
            }
        }
        return true;
    }
}
