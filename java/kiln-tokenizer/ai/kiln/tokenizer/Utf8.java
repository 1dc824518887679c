package ai.kiln.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * UTF-8 decoding with the replacement rules of Rust's {@code String::from_utf8_lossy}, which is
 * what Hugging Face decoders use: each maximal invalid subsequence (the longest prefix of a
 * well-formed sequence, or a single unusable byte) becomes one U+FFFD. java.nio's decoder is
 * close but not specified to the same precision, and decoded text must match byte for byte.
 */
final class Utf8 {
    static final char REPLACEMENT = '\uFFFD';

    private Utf8() {
    }

    /** Decodes {@code bytes[0, length)}, replacing invalid sequences as Rust does. */
    static String decodeLossy(byte[] bytes, int length) {
        StringBuilder out = new StringBuilder(length);
        int consumed = decodeInto(bytes, 0, length, true, out);
        assert consumed == length;
        return out.toString();
    }

    /** True when {@code bytes[0, length)} is entirely well-formed UTF-8. */
    static boolean isValid(byte[] bytes, int length) {
        int i = 0;
        while (i < length) {
            int sequence = wellFormedLength(bytes, i, length);
            if (sequence <= 0) {
                return false;
            }
            i += sequence;
        }
        return true;
    }

    /**
     * Decodes from {@code start} and appends to {@code out}. With {@code endOfInput} false, stops
     * before a trailing sequence that is still incomplete (it may be completed by later bytes)
     * and returns the index where it starts; otherwise consumes everything.
     */
    static int decodeInto(byte[] bytes, int start, int end, boolean endOfInput, StringBuilder out) {
        int i = start;
        while (i < end) {
            int b0 = bytes[i] & 0xFF;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            }
            int sequence = wellFormedLength(bytes, i, end);
            if (sequence > 0) {
                out.appendCodePoint(codePointAt(bytes, i, sequence));
                i += sequence;
            } else if (sequence == 0) {
                // A valid but truncated prefix that reaches the end of the available bytes.
                if (!endOfInput) {
                    return i;
                }
                out.append(REPLACEMENT);
                return end;
            } else {
                out.append(REPLACEMENT);
                i += -sequence;
            }
        }
        return end;
    }

    /**
     * Length of the well-formed sequence at {@code i}; 0 when the bytes up to {@code end} are a
     * valid prefix of one that is cut off; otherwise minus the length of the maximal invalid
     * subpart to replace with one U+FFFD.
     */
    private static int wellFormedLength(byte[] bytes, int i, int end) {
        int b0 = bytes[i] & 0xFF;
        if (b0 < 0x80) {
            return 1;
        }
        int needed;
        int secondLow = 0x80;
        int secondHigh = 0xBF;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            needed = 1;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            needed = 2;
            if (b0 == 0xE0) {
                secondLow = 0xA0;
            } else if (b0 == 0xED) {
                secondHigh = 0x9F;
            }
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            needed = 3;
            if (b0 == 0xF0) {
                secondLow = 0x90;
            } else if (b0 == 0xF4) {
                secondHigh = 0x8F;
            }
        } else {
            return -1;
        }
        for (int k = 1; k <= needed; k++) {
            if (i + k >= end) {
                return 0;
            }
            int b = bytes[i + k] & 0xFF;
            int low = k == 1 ? secondLow : 0x80;
            int high = k == 1 ? secondHigh : 0xBF;
            if (b < low || b > high) {
                return -k;
            }
        }
        return needed + 1;
    }

    private static int codePointAt(byte[] bytes, int i, int length) {
        int b0 = bytes[i] & 0xFF;
        switch (length) {
            case 2:
                return ((b0 & 0x1F) << 6) | (bytes[i + 1] & 0x3F);
            case 3:
                return ((b0 & 0x0F) << 12) | ((bytes[i + 1] & 0x3F) << 6) | (bytes[i + 2] & 0x3F);
            default:
                return ((b0 & 0x07) << 18) | ((bytes[i + 1] & 0x3F) << 12) | ((bytes[i + 2] & 0x3F) << 6)
                        | (bytes[i + 3] & 0x3F);
        }
    }

    /** UTF-8 bytes of a string that the caller has checked holds no lone surrogates. */
    static byte[] encode(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** Number of UTF-8 bytes of a string without lone surrogates. */
    static int encodedLength(CharSequence text) {
        int length = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                length += 1;
            } else if (c < 0x800) {
                length += 2;
            } else if (Character.isHighSurrogate(c)) {
                length += 4;
                i++;
            } else {
                length += 3;
            }
        }
        return length;
    }

    /**
     * Index of the first lone surrogate in {@code text}, or -1. Hugging Face tokenizers operate on
     * Rust strings, which cannot hold lone surrogates: its Python binding refuses such input
     * ("TextInputSequence must be str"), and Kiln refuses it too.
     */
    static int indexOfLoneSurrogate(CharSequence text) {
        int length = text.length();
        for (int i = 0; i < length; i++) {
            char c = text.charAt(i);
            if (c < Character.MIN_SURROGATE || c > Character.MAX_SURROGATE) {
                continue;
            }
            if (Character.isHighSurrogate(c) && i + 1 < length && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
                continue;
            }
            return i;
        }
        return -1;
    }
}
