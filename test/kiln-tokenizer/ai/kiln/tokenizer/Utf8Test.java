package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Rust's from_utf8_lossy: one U+FFFD per maximal invalid subsequence. */
class Utf8Test {
    private static String lossy(int... values) {
        byte[] bytes = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            bytes[i] = (byte) values[i];
        }
        return Utf8.decodeLossy(bytes, bytes.length);
    }

    @Test
    void replacesMaximalSubparts() {
        assertEquals("a\u00e9", lossy('a', 0xC3, 0xA9));
        assertEquals("\uFFFD", lossy(0xE2, 0x82));                 // truncated at the end: one
        assertEquals("\uFFFDA", lossy(0xE2, 0x82, 'A'));          // truncated by a bad byte: one, then the byte
        assertEquals("\uFFFD\uFFFD\uFFFD", lossy(0xED, 0xA0, 0x80)); // an encoded surrogate: three
        assertEquals("\uFFFD\uFFFD", lossy(0xC0, 0xAF));           // overlong
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", lossy(0xF4, 0x90, 0x80, 0x80)); // above U+10FFFF
        assertEquals("\uD83D\uDE00\uFFFD", lossy(0xF0, 0x9F, 0x98, 0x80, 0xF0, 0x9F, 0x98));
        assertEquals("\uFFFD", lossy(0xFF));
    }

    @Test
    void streamingHoldsOnlyIncompleteTails() {
        byte[] bytes = {'x', (byte) 0xE4, (byte) 0xBD};
        StringBuilder out = new StringBuilder();
        assertEquals(1, Utf8.decodeInto(bytes, 0, bytes.length, false, out));
        assertEquals("x", out.toString());
        byte[] invalid = {(byte) 0xE4, 'y'};
        out.setLength(0);
        assertEquals(2, Utf8.decodeInto(invalid, 0, invalid.length, false, out));
        assertEquals("\uFFFDy", out.toString());
    }

    @Test
    void findsLoneSurrogates() {
        assertEquals(-1, Utf8.indexOfLoneSurrogate("a\uD83D\uDE00b"));
        assertEquals(1, Utf8.indexOfLoneSurrogate("a\uDE00"));
        assertEquals(2, Utf8.indexOfLoneSurrogate("ab\uD83D"));
    }
}
