package ai.kiln.tokenizer;

/**
 * What to do with delimiters when splitting text, as Hugging Face's SplitDelimiterBehavior: given
 * the text cut into alternating non-matches and matches, which pieces come out.
 */
enum SplitBehavior {
    REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS;

    /** Parses the name used in tokenizer.json ("Removed", "MergedWithPrevious", ...), or null. */
    static SplitBehavior fromJsonName(String name) {
        switch (name) {
            case "Removed":
                return REMOVED;
            case "Isolated":
                return ISOLATED;
            case "MergedWithPrevious":
                return MERGED_WITH_PREVIOUS;
            case "MergedWithNext":
                return MERGED_WITH_NEXT;
            case "Contiguous":
                return CONTIGUOUS;
            default:
                return null;
        }
    }

    /** Receives each resulting piece as a region of the text. */
    interface PieceSink {
        void accept(String text, int start, int end);
    }

    /**
     * Splits {@code text} given its matches ({@code matchBounds} holds start, end pairs in order,
     * non-overlapping), passing every non-empty resulting piece to {@code sink}.
     */
    void split(String text, IntList matchBounds, boolean invert, PieceSink sink) {
        int length = text.length();
        int pairs = matchBounds.size() / 2;
        // Segments cover the text: gaps are non-matches, exactly as Hugging Face's find_matches.
        int[] starts = new int[pairs * 2 + 1];
        int[] ends = new int[pairs * 2 + 1];
        boolean[] matched = new boolean[pairs * 2 + 1];
        int count = 0;
        int previous = 0;
        for (int p = 0; p < pairs; p++) {
            int start = matchBounds.get(2 * p);
            int end = matchBounds.get(2 * p + 1);
            if (previous != start) {
                starts[count] = previous;
                ends[count] = start;
                matched[count++] = invert;
            }
            starts[count] = start;
            ends[count] = end;
            matched[count++] = !invert;
            previous = end;
        }
        if (previous != length || count == 0) {
            starts[count] = previous;
            ends[count] = length;
            matched[count++] = invert;
        }

        switch (this) {
            case ISOLATED:
                for (int s = 0; s < count; s++) {
                    emit(text, starts[s], ends[s], sink);
                }
                break;
            case REMOVED:
                for (int s = 0; s < count; s++) {
                    if (!matched[s]) {
                        emit(text, starts[s], ends[s], sink);
                    }
                }
                break;
            case MERGED_WITH_PREVIOUS: {
                IntList pieces = new IntList(count * 2);
                boolean previousMatch = false;
                for (int s = 0; s < count; s++) {
                    if (matched[s] && !previousMatch && !pieces.isEmpty()) {
                        pieces.set(pieces.size() - 1, ends[s]);
                    } else {
                        pieces.add(starts[s]);
                        pieces.add(ends[s]);
                    }
                    previousMatch = matched[s];
                }
                emitAll(text, pieces, sink);
                break;
            }
            case MERGED_WITH_NEXT: {
                IntList reversed = new IntList(count * 2);
                boolean previousMatch = false;
                for (int s = count - 1; s >= 0; s--) {
                    if (matched[s] && !previousMatch && !reversed.isEmpty()) {
                        reversed.set(reversed.size() - 2, starts[s]);
                    } else {
                        reversed.add(starts[s]);
                        reversed.add(ends[s]);
                    }
                    previousMatch = matched[s];
                }
                for (int p = reversed.size() / 2 - 1; p >= 0; p--) {
                    emit(text, reversed.get(2 * p), reversed.get(2 * p + 1), sink);
                }
                break;
            }
            case CONTIGUOUS: {
                IntList pieces = new IntList(count * 2);
                boolean previousMatch = false;
                for (int s = 0; s < count; s++) {
                    if (matched[s] == previousMatch && !pieces.isEmpty()) {
                        pieces.set(pieces.size() - 1, ends[s]);
                    } else {
                        pieces.add(starts[s]);
                        pieces.add(ends[s]);
                    }
                    previousMatch = matched[s];
                }
                emitAll(text, pieces, sink);
                break;
            }
            default:
                throw new AssertionError(this);
        }
    }

    private static void emitAll(String text, IntList pieces, PieceSink sink) {
        for (int p = 0; p < pieces.size() / 2; p++) {
            emit(text, pieces.get(2 * p), pieces.get(2 * p + 1), sink);
        }
    }

    private static void emit(String text, int start, int end, PieceSink sink) {
        // Hugging Face drops empty pieces after every split.
        if (end > start) {
            sink.accept(text, start, end);
        }
    }
}
