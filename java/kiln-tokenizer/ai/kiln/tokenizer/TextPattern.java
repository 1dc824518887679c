package ai.kiln.tokenizer;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A pattern from tokenizer.json ({@code {"String": ...}} or {@code {"Regex": ...}}): finds
 * non-overlapping matches left to right, and replaces them.
 */
sealed interface TextPattern {
    /** Appends the start and end of each match in {@code text} to {@code matchBounds}. */
    void findMatches(String text, IntList matchBounds);

    /** Replaces every match with {@code replacement} taken literally. */
    String replaceAll(String text, String replacement);

    /** A literal string. */
    record Literal(String literal) implements TextPattern {
        public Literal {
            if (literal.isEmpty()) {
                throw new IllegalArgumentException("empty string pattern");
            }
        }

        @Override
        public void findMatches(String text, IntList matchBounds) {
            int from = 0;
            int at;
            while ((at = text.indexOf(literal, from)) >= 0) {
                matchBounds.add(at);
                matchBounds.add(at + literal.length());
                from = at + literal.length();
            }
        }

        @Override
        public String replaceAll(String text, String replacement) {
            return text.replace(literal, replacement);
        }
    }

    /** An Oniguruma regex, translated to java.util.regex. */
    record Regex(String source, Pattern compiled, GptPatternSplitter fastPath) implements TextPattern {
        static Regex of(String source) {
            return new Regex(source, OnigurumaRegex.compile(source), GptPatternSplitter.forPattern(source));
        }

        @Override
        public void findMatches(String text, IntList matchBounds) {
            if (fastPath != null) {
                fastPath.forEachMatch(text, 0, text.length(), (t, start, end) -> {
                    matchBounds.add(start);
                    matchBounds.add(end);
                });
                return;
            }
            Matcher matcher = compiled.matcher(text);
            while (matcher.find()) {
                matchBounds.add(matcher.start());
                matchBounds.add(matcher.end());
            }
        }

        @Override
        public String replaceAll(String text, String replacement) {
            return compiled.matcher(text).replaceAll(Matcher.quoteReplacement(replacement));
        }
    }
}
