package ai.kiln.tokenizer;

/**
 * GPT-2's reversible mapping between bytes and printable characters ("bytes_to_unicode"), used by
 * byte-level BPE vocabularies: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100 and up, in byte order.
 */
final class ByteLevelAlphabet {
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Byte for each mapped character below U+0144, or -1. */
    private static final short[] CHAR_TO_BYTE = new short[0x144];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteLevelAlphabet() {
    }

    static char charOf(int unsignedByte) {
        return BYTE_TO_CHAR[unsignedByte];
    }

    /** The byte a character stands for, or -1 when it is not part of the alphabet. */
    static int byteOf(int codePoint) {
        return codePoint >= 0 && codePoint < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[codePoint] : -1;
    }

    /** Maps the UTF-8 bytes of {@code text[start, end)} to alphabet characters. */
    static String map(CharSequence text, int start, int end) {
        StringBuilder out = new StringBuilder((end - start) * 2);
        for (int i = start; i < end; i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                out.append(BYTE_TO_CHAR[c]);
            } else if (c < 0x800) {
                out.append(BYTE_TO_CHAR[0xC0 | (c >> 6)]).append(BYTE_TO_CHAR[0x80 | (c & 0x3F)]);
            } else if (Character.isHighSurrogate(c) && i + 1 < end && Character.isLowSurrogate(text.charAt(i + 1))) {
                int cp = Character.toCodePoint(c, text.charAt(++i));
                out.append(BYTE_TO_CHAR[0xF0 | (cp >> 18)])
                        .append(BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3F)])
                        .append(BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3F)])
                        .append(BYTE_TO_CHAR[0x80 | (cp & 0x3F)]);
            } else {
                out.append(BYTE_TO_CHAR[0xE0 | (c >> 12)])
                        .append(BYTE_TO_CHAR[0x80 | ((c >> 6) & 0x3F)])
                        .append(BYTE_TO_CHAR[0x80 | (c & 0x3F)]);
            }
        }
        return out.toString();
    }

    /**
     * The bytes a token stands for when decoded by the ByteLevel decoder: the alphabet bytes when
     * every character is in the alphabet, otherwise the token's own UTF-8 bytes, as Hugging Face
     * does for a token with any character outside the alphabet (an added token holding a space).
     */
    static byte[] tokenBytes(String token) {
        byte[] mapped = new byte[token.length()];
        int n = 0;
        for (int i = 0; i < token.length(); ) {
            int cp = token.codePointAt(i);
            int b = byteOf(cp);
            if (b < 0) {
                return Utf8.encode(token);
            }
            mapped[n++] = (byte) b;
            i += Character.charCount(cp);
        }
        return n == mapped.length ? mapped : java.util.Arrays.copyOf(mapped, n);
    }
}
