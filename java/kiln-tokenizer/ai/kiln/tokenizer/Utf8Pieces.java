package ai.kiln.tokenizer;

import java.util.Arrays;

/**
 * UTF-8 that arrives in pieces (the bytes of one token at a time): each piece gives back the
 * characters it completes, a character split over pieces waiting for its last byte; invalid
 * bytes become U+FFFD as {@link Utf8#decodeLossy} makes them, so the pieces' text joined is the
 * lossy decode of all the bytes. Not thread-safe.
 */
final class Utf8Pieces {
    private byte[] pending = new byte[16]; // [pendingLength]: the start of a character still incomplete
    private int pendingLength;
    private final StringBuilder decoded = new StringBuilder();

    /** Adds the next bytes; returns the characters now complete ("" if none). */
    String append(byte[] bytes) {
        if (pendingLength + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, pendingLength, bytes.length);
        pendingLength += bytes.length;
        int consumed = Utf8.decodeInto(pending, 0, pendingLength, false, decoded);
        System.arraycopy(pending, consumed, pending, 0, pendingLength - consumed);
        pendingLength -= consumed;
        String text = decoded.toString();
        decoded.setLength(0);
        return text;
    }

    /** No more bytes: what was still pending, an incomplete character as U+FFFD ("" if none); empty after. */
    String finish() {
        String text = pendingLength == 0 ? "" : Utf8.decodeLossy(pending, pendingLength);
        pendingLength = 0;
        return text;
    }
}
