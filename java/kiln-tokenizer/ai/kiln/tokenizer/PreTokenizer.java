package ai.kiln.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A pre-tokenizer from tokenizer.json's "pre_tokenizer" section: cuts normalized text into the
 * words that the model tokenizes one by one.
 */
sealed interface PreTokenizer {
    /** Receives each word as a region of a string. */
    interface WordSink {
        /** @param atInputStart whether the word begins at the very start of the input text */
        void accept(String text, int start, int end, boolean atInputStart);
    }

    /**
     * Splits {@code text} (a piece of the input between added tokens, normalized) into words.
     *
     * @param atInputStart whether {@code text} begins at the start of the input (for Metaspace's
     *                     "first" prepend scheme)
     */
    void split(String text, boolean atInputStart, WordSink sink);

    /** Splits on a pattern, keeping or dropping the delimiters as the behavior says. */
    record Split(TextPattern pattern, SplitBehavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public void split(String text, boolean atInputStart, WordSink sink) {
            if (pattern instanceof TextPattern.Regex regex && regex.fastPath() != null
                    && behavior == SplitBehavior.ISOLATED && !invert) {
                // Hot path for byte-level BPE models: matches tile the text, so each is a word.
                regex.fastPath().forEachMatch(text, 0, text.length(),
                        (t, start, end) -> sink.accept(t, start, end, atInputStart && start == 0));
                return;
            }
            IntList matches = new IntList(16);
            pattern.findMatches(text, matches);
            behavior.split(text, matches, invert, (t, start, end) -> sink.accept(t, start, end, atInputStart && start == 0));
        }
    }

    /**
     * GPT-2's byte-level pre-tokenizer: optionally prepends a space and splits with the GPT-2
     * regex, then maps the UTF-8 bytes of each word to the byte-level alphabet. When it is the
     * last pre-tokenizer the mapping is left to the model ({@code mapBytes} false), which can then
     * cache words by their original text.
     */
    record ByteLevel(boolean addPrefixSpace, boolean useRegex, boolean mapBytes) implements PreTokenizer {
        @Override
        public void split(String text, boolean atInputStart, WordSink sink) {
            String spaced = addPrefixSpace && !text.startsWith(" ") ? " " + text : text;
            if (!useRegex) {
                emit(spaced, 0, spaced.length(), atInputStart, sink);
                return;
            }
            GptPatternSplitter.GPT2.forEachMatch(spaced, 0, spaced.length(),
                    (t, start, end) -> emit(t, start, end, atInputStart && start == 0, sink));
        }

        private void emit(String text, int start, int end, boolean atInputStart, WordSink sink) {
            if (mapBytes) {
                String mapped = ByteLevelAlphabet.map(text, start, end);
                sink.accept(mapped, 0, mapped.length(), atInputStart);
            } else {
                sink.accept(text, start, end, atInputStart);
            }
        }
    }

    /** SentencePiece-style: spaces become the replacement character ("▁"), which may be prepended. */
    record Metaspace(int replacement, PrependScheme prependScheme, boolean splitOnReplacement) implements PreTokenizer {
        enum PrependScheme { ALWAYS, FIRST, NEVER }

        @Override
        public void split(String text, boolean atInputStart, WordSink sink) {
            String replacementText = new String(Character.toChars(replacement));
            String replaced = text.replace(" ", replacementText);
            boolean prepend = switch (prependScheme) {
                case ALWAYS -> true;
                case FIRST -> atInputStart;
                case NEVER -> false;
            };
            if (prepend && !replaced.startsWith(replacementText)) {
                replaced = replacementText + replaced;
            }
            if (!splitOnReplacement) {
                sink.accept(replaced, 0, replaced.length(), atInputStart);
                return;
            }
            IntList matches = new IntList(16);
            new TextPattern.Literal(replacementText).findMatches(replaced, matches);
            SplitBehavior.MERGED_WITH_NEXT.split(replaced, matches, false,
                    (t, start, end) -> sink.accept(t, start, end, atInputStart && start == 0));
        }
    }

    /** Splits on each character matching a predicate (digits, whitespace, punctuation). */
    record CharacterSplit(String name, IntPredicate isDelimiter, SplitBehavior behavior) implements PreTokenizer {
        static CharacterSplit digits(boolean individualDigits) {
            return new CharacterSplit("Digits", CharacterSplit::isRustNumeric,
                    individualDigits ? SplitBehavior.ISOLATED : SplitBehavior.CONTIGUOUS);
        }

        static CharacterSplit whitespaceSplit() {
            return new CharacterSplit("WhitespaceSplit", Normalizer::isRustWhitespace, SplitBehavior.REMOVED);
        }

        static CharacterSplit punctuation(SplitBehavior behavior) {
            return new CharacterSplit("Punctuation", CharacterSplit::isPunctuation, behavior);
        }

        /** Rust's {@code char::is_numeric}: categories Nd, Nl and No. */
        static boolean isRustNumeric(int cp) {
            int type = Character.getType(cp);
            return type == Character.DECIMAL_DIGIT_NUMBER || type == Character.LETTER_NUMBER
                    || type == Character.OTHER_NUMBER;
        }

        /** ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) or any Unicode P* category. */
        static boolean isPunctuation(int cp) {
            if (cp < 128) {
                return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
            }
            switch (Character.getType(cp)) {
                case Character.CONNECTOR_PUNCTUATION: case Character.DASH_PUNCTUATION:
                case Character.START_PUNCTUATION: case Character.END_PUNCTUATION:
                case Character.INITIAL_QUOTE_PUNCTUATION: case Character.FINAL_QUOTE_PUNCTUATION:
                case Character.OTHER_PUNCTUATION:
                    return true;
                default:
                    return false;
            }
        }

        @Override
        public void split(String text, boolean atInputStart, WordSink sink) {
            IntList matches = new IntList(16);
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                int next = i + Character.charCount(cp);
                if (isDelimiter.test(cp)) {
                    matches.add(i);
                    matches.add(next);
                }
                i = next;
            }
            behavior.split(text, matches, false, (t, start, end) -> sink.accept(t, start, end, atInputStart && start == 0));
        }
    }

    /** Hugging Face's "Whitespace": keeps runs of word characters and runs of other non-space characters. */
    record Whitespace() implements PreTokenizer {
        private static final Pattern WORDS = OnigurumaRegex.compile("\\w+|[^\\w\\s]+");

        @Override
        public void split(String text, boolean atInputStart, WordSink sink) {
            Matcher matcher = WORDS.matcher(text);
            while (matcher.find()) {
                if (matcher.end() > matcher.start()) {
                    sink.accept(text, matcher.start(), matcher.end(), atInputStart && matcher.start() == 0);
                }
            }
        }
    }

    record Sequence(List<PreTokenizer> preTokenizers) implements PreTokenizer {
        public Sequence {
            preTokenizers = List.copyOf(preTokenizers);
        }

        private record Word(String text, boolean atInputStart) {
        }

        @Override
        public void split(String text, boolean atInputStart, WordSink sink) {
            if (preTokenizers.isEmpty()) {
                sink.accept(text, 0, text.length(), atInputStart);
                return;
            }
            List<Word> words = List.of(new Word(text, atInputStart));
            int last = preTokenizers.size() - 1;
            for (int stage = 0; stage < last; stage++) {
                List<Word> next = new ArrayList<>();
                for (Word word : words) {
                    preTokenizers.get(stage).split(word.text, word.atInputStart,
                            (t, start, end, first) -> next.add(new Word(t.substring(start, end), first)));
                }
                words = next;
            }
            for (Word word : words) {
                preTokenizers.get(last).split(word.text, word.atInputStart, sink);
            }
        }
    }
}
