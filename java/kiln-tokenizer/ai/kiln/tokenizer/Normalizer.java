package ai.kiln.tokenizer;

import java.util.List;

/** A text normalizer from tokenizer.json's "normalizer" section, applied to text before pre-tokenization. */
sealed interface Normalizer {
    String normalize(String text);

    /** NFC, NFD, NFKC or NFKD. */
    record Unicode(java.text.Normalizer.Form form) implements Normalizer {
        public Unicode {
            java.util.Objects.requireNonNull(form, "form");
        }

        @Override
        public String normalize(String text) {
            return java.text.Normalizer.normalize(text, form);
        }
    }

    /**
     * Lowercases each code point on its own, as Rust's {@code char::to_lowercase}: no context
     * rules (a final capital sigma becomes σ, not ς), but full mappings (İ becomes "i̇").
     */
    record Lowercase() implements Normalizer {
        @Override
        public String normalize(String text) {
            StringBuilder out = new StringBuilder(text.length());
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                i += Character.charCount(cp);
                if (cp == 0x130) {
                    out.append("i\u0307");
                } else {
                    out.appendCodePoint(Character.toLowerCase(cp));
                }
            }
            return out.toString();
        }
    }

    /** Removes leading and/or trailing whitespace (Rust's {@code char::is_whitespace}). */
    record Strip(boolean left, boolean right) implements Normalizer {
        @Override
        public String normalize(String text) {
            int start = 0;
            int end = text.length();
            if (left) {
                while (start < end && isRustWhitespace(text.charAt(start))) {
                    start++;
                }
            }
            if (right) {
                while (end > start && isRustWhitespace(text.charAt(end - 1))) {
                    end--;
                }
            }
            return text.substring(start, end);
        }
    }

    /** Drops combining marks (categories Mn, Mc and Me, as Hugging Face's is_combining_mark); usually follows NFD or NFKD. */
    record StripAccents() implements Normalizer {
        @Override
        public String normalize(String text) {
            StringBuilder out = new StringBuilder(text.length());
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                i += Character.charCount(cp);
                int type = Character.getType(cp);
                if (type != Character.NON_SPACING_MARK && type != Character.COMBINING_SPACING_MARK
                        && type != Character.ENCLOSING_MARK) {
                    out.appendCodePoint(cp);
                }
            }
            return out.toString();
        }
    }

    record Replace(TextPattern pattern, String content) implements Normalizer {
        @Override
        public String normalize(String text) {
            return pattern.replaceAll(text, content);
        }
    }

    /** Prepends a string to non-empty text (SentencePiece's leading "▁"). */
    record Prepend(String prefix) implements Normalizer {
        @Override
        public String normalize(String text) {
            return text.isEmpty() ? text : prefix + text;
        }
    }

    record Sequence(List<Normalizer> normalizers) implements Normalizer {
        public Sequence {
            normalizers = List.copyOf(normalizers);
        }

        @Override
        public String normalize(String text) {
            for (Normalizer normalizer : normalizers) {
                text = normalizer.normalize(text);
            }
            return text;
        }
    }

    /** Rust's {@code char::is_whitespace}: the Unicode White_Space property (all in the BMP). */
    static boolean isRustWhitespace(int cp) {
        int type = Character.getType(cp);
        return type == Character.SPACE_SEPARATOR || type == Character.LINE_SEPARATOR
                || type == Character.PARAGRAPH_SEPARATOR || (cp >= 0x9 && cp <= 0xD) || cp == 0x85;
    }
}
