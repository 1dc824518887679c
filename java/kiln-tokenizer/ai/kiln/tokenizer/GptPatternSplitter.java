package ai.kiln.tokenizer;

/**
 * Hand-written matchers for the pre-tokenization regexes that nearly every byte-level BPE model
 * uses, equivalent to running the regex with java.util.regex (a differential test checks this on
 * random text) but several times faster. Chosen only when tokenizer.json holds one of these
 * patterns character for character; any other pattern goes through {@link OnigurumaRegex}.
 *
 * <ul>
 *   <li>{@link #LLAMA3}: {@code (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *       ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+} (Llama 3, GPT-4's cl100k)</li>
 *   <li>{@link #QWEN2}: the same with {@code \p{N}} instead of {@code \p{N}{1,3}} (Qwen 2 and 3)</li>
 *   <li>{@link #GPT2}: {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}
 *       (GPT-2, and the ByteLevel pre-tokenizer's built-in regex)</li>
 * </ul>
 */
final class GptPatternSplitter {
    static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String GPT2_PATTERN =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    static final GptPatternSplitter LLAMA3 = new GptPatternSplitter(false, 3);
    static final GptPatternSplitter QWEN2 = new GptPatternSplitter(false, 1);
    static final GptPatternSplitter GPT2 = new GptPatternSplitter(true, Integer.MAX_VALUE);

    /** The splitter for a regex from tokenizer.json, or null if it is not one of the known ones. */
    static GptPatternSplitter forPattern(String regex) {
        switch (regex) {
            case LLAMA3_PATTERN:
                return LLAMA3;
            case QWEN2_PATTERN:
                return QWEN2;
            case GPT2_PATTERN:
                return GPT2;
            default:
                return null;
        }
    }

    private static final byte LETTER = 1;
    private static final byte NUMBER = 2;
    private static final byte SPACE = 4;
    private static final byte CR_OR_LF = 8;
    /** Character classes of the BMP, precomputed; supplementary code points are classified on demand. */
    private static final byte[] BMP_CLASSES = new byte[0x10000];

    static {
        for (int c = 0; c < 0x10000; c++) {
            BMP_CLASSES[c] = classify(c);
        }
    }

    private final boolean gpt2;
    private final int maxDigits;

    private GptPatternSplitter(boolean gpt2, int maxDigits) {
        this.gpt2 = gpt2;
        this.maxDigits = maxDigits;
    }

    private static byte classify(int cp) {
        int type = Character.getType(cp);
        byte bits = 0;
        switch (type) {
            case Character.UPPERCASE_LETTER: case Character.LOWERCASE_LETTER: case Character.TITLECASE_LETTER:
            case Character.MODIFIER_LETTER: case Character.OTHER_LETTER:
                bits |= LETTER;
                break;
            case Character.DECIMAL_DIGIT_NUMBER: case Character.LETTER_NUMBER: case Character.OTHER_NUMBER:
                bits |= NUMBER;
                break;
            default:
                break;
        }
        // The White_Space property, as java.util.regex's \s under UNICODE_CHARACTER_CLASS.
        if (type == Character.SPACE_SEPARATOR || type == Character.LINE_SEPARATOR
                || type == Character.PARAGRAPH_SEPARATOR || (cp >= 0x9 && cp <= 0xD) || cp == 0x85) {
            bits |= SPACE;
        }
        if (cp == '\r' || cp == '\n') {
            bits |= CR_OR_LF;
        }
        return bits;
    }

    private static int classAt(String text, int i) {
        char c = text.charAt(i);
        if (!Character.isHighSurrogate(c) || i + 1 >= text.length()) {
            return BMP_CLASSES[c];
        }
        return classify(text.codePointAt(i));
    }

    private static int charLength(String text, int i) {
        return Character.isHighSurrogate(text.charAt(i)) && i + 1 < text.length()
                && Character.isLowSurrogate(text.charAt(i + 1)) ? 2 : 1;
    }

    private static boolean isOther(int classBits) {
        return (classBits & (LETTER | NUMBER | SPACE)) == 0;
    }

    /** Receives each match as a region of the text. */
    interface MatchSink {
        void accept(String text, int start, int end);
    }

    /** Finds all matches of the pattern in {@code text[from, to)}, left to right. */
    void forEachMatch(String text, int from, int to, MatchSink sink) {
        String region = from == 0 && to == text.length() ? text : text.substring(from, to);
        int i = 0;
        int n = region.length();
        while (i < n) {
            int end = gpt2 ? matchGpt2(region, i, n) : matchCl100k(region, i, n);
            sink.accept(text, from + i, from + end);
            i = end;
        }
    }

    private int matchCl100k(String s, int i, int n) {
        char c = s.charAt(i);
        int cls = classAt(s, i);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (c == '\'' && i + 1 < n) {
            int contraction = contractionLength(s, i + 1, n, true);
            if (contraction > 0) {
                return i + 1 + contraction;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if ((cls & LETTER) != 0) {
            return skipClass(s, i, n, LETTER);
        }
        if ((cls & (NUMBER | CR_OR_LF)) == 0) {
            int next = i + charLength(s, i);
            if (next < n && (classAt(s, next) & LETTER) != 0) {
                return skipClass(s, next, n, LETTER);
            }
        }
        // \p{N}{1,3}
        if ((cls & NUMBER) != 0) {
            int end = i;
            for (int k = 0; k < maxDigits && end < n && (classAt(s, end) & NUMBER) != 0; k++) {
                end += charLength(s, end);
            }
            return end;
        }
        // " ?[^\s\p{L}\p{N}]+[\r\n]*"
        int otherStart = c == ' ' && i + 1 < n && isOther(classAt(s, i + 1)) ? i + 1 : i;
        if (isOther(classAt(s, otherStart))) {
            int end = otherStart;
            while (end < n && isOther(classAt(s, end))) {
                end += charLength(s, end);
            }
            while (end < n && (s.charAt(end) == '\r' || s.charAt(end) == '\n')) {
                end++;
            }
            return end;
        }
        // Whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
        int runEnd = skipClass(s, i, n, SPACE);
        for (int k = runEnd - 1; k >= i; k--) {
            char w = s.charAt(k);
            if (w == '\r' || w == '\n') {
                return k + 1;
            }
        }
        return whitespaceRunMatch(s, i, runEnd, n);
    }

    private int matchGpt2(String s, int i, int n) {
        char c = s.charAt(i);
        // 's|'t|'re|'ve|'m|'ll|'d
        if (c == '\'' && i + 1 < n) {
            int contraction = contractionLength(s, i + 1, n, false);
            if (contraction > 0) {
                return i + 1 + contraction;
            }
        }
        int start = i;
        if (c == ' ' && i + 1 < n && (classAt(s, i + 1) & SPACE) == 0) {
            start = i + 1;
        }
        int cls = classAt(s, start);
        if ((cls & LETTER) != 0) {
            return skipClass(s, start, n, LETTER);
        }
        if ((cls & NUMBER) != 0) {
            return skipClass(s, start, n, NUMBER);
        }
        if (isOther(cls)) {
            int end = start;
            while (end < n && isOther(classAt(s, end))) {
                end += charLength(s, end);
            }
            return end;
        }
        return whitespaceRunMatch(s, i, skipClass(s, i, n, SPACE), n);
    }

    /** {@code \s+(?!\S)} then {@code \s+} over the whitespace run {@code [i, runEnd)}. */
    private static int whitespaceRunMatch(String s, int i, int runEnd, int n) {
        if (runEnd == n) {
            return runEnd;
        }
        // Leave the last whitespace character to prefix the next word, unless it is the only one.
        int last = runEnd - 1;
        if (last > i && Character.isLowSurrogate(s.charAt(last)) && Character.isHighSurrogate(s.charAt(last - 1))) {
            last--;
        }
        return last > i ? last : runEnd;
    }

    private static int skipClass(String s, int i, int n, byte classBit) {
        int end = i;
        while (end < n) {
            char c = s.charAt(end);
            if (!Character.isHighSurrogate(c)) {
                if ((BMP_CLASSES[c] & classBit) == 0) {
                    break;
                }
                end++;
            } else {
                if ((classAt(s, end) & classBit) == 0) {
                    break;
                }
                end += charLength(s, end);
            }
        }
        return end;
    }

    /** Length of the contraction suffix ("s", "re", ...) after an apostrophe at {@code i}, or 0. */
    private static int contractionLength(String s, int i, int n, boolean ignoreCase) {
        int first = fold(s.charAt(i), ignoreCase);
        switch (first) {
            case 's': case 't': case 'm': case 'd':
                return 1;
            case 'r': case 'v': case 'l': {
                if (i + 1 >= n) {
                    return 0;
                }
                int second = fold(s.charAt(i + 1), ignoreCase);
                boolean matches = (first == 'r' && second == 'e') || (first == 'v' && second == 'e')
                        || (first == 'l' && second == 'l');
                return matches ? 2 : 0;
            }
            default:
                return 0;
        }
    }

    /** Unicode case folding restricted to what can match the contraction letters. */
    private static int fold(char c, boolean ignoreCase) {
        if (!ignoreCase) {
            return c;
        }
        if (c == '\u017F') { // LATIN SMALL LETTER LONG S folds to 's'
            return 's';
        }
        return c < 128 ? Character.toLowerCase(c) : c;
    }
}
