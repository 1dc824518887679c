package ai.kiln.server;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;

/**
 * A request body's bytes as one JSON value, read strictly: the bytes must be well-formed UTF-8
 * (RFC 8259 section 8.1), nothing but whitespace may follow the value, and no string (or field
 * name) may hold a lone surrogate. A lenient reader would let one body mean different things to
 * this server and to a proxy or logger in front of it.
 */
final class RequestJson {

    private RequestJson() {
    }

    /** The value of a non-empty body, or a 400 ({@code invalid_json}) that says what is wrong and where. */
    static JsonNode parse(byte[] bytes) {
        if (bytes.length == 0) {
            throw invalid("The request body is empty; send a JSON object.");
        }
        CharBuffer text = decodeUtf8(bytes);
        JsonNode node;
        try (JsonParser parser = Exchange.JSON.createParser(text.array(), text.position(), text.remaining())) {
            node = Exchange.JSON.readTree(parser);
            if (node == null || node.isMissingNode()) {
                throw invalid("The request body is empty; send a JSON object.");
            }
            JsonLocation end = parser.currentLocation();
            boolean trailing;
            try {
                trailing = parser.nextToken() != null;
            } catch (JsonProcessingException e) {
                trailing = true; // not even a token: garbage after the value
            }
            if (trailing) {
                throw invalid("The request body has data after the JSON value (from line " + end.getLineNr()
                        + ", column " + end.getColumnNr() + "); send exactly one JSON object.");
            }
        } catch (JsonProcessingException e) {
            throw invalid("The request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(e); // an in-memory parser does no I/O
        }
        checkSurrogates(node, new ArrayDeque<>());
        return node;
    }

    /**
     * Strict UTF-8: overlong forms ({@code C0 AF} for '/'), encoded surrogates ({@code ED A0 80}),
     * bytes that start no sequence and sequences cut short are refused, never replaced. A leading
     * byte-order mark is dropped, as JSON readers may (RFC 8259 section 8.1).
     */
    static CharBuffer decodeUtf8(byte[] bytes) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        // NOTE: UTF-8 never decodes to more UTF-16 units than it has bytes.
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) {
            result = decoder.flush(out);
        }
        if (result.isError()) {
            int at = in.position();
            StringBuilder shown = new StringBuilder();
            for (int i = at; i < Math.min(bytes.length, at + result.length()); i++) {
                shown.append(String.format(" %02X", bytes[i] & 0xFF));
            }
            throw invalid("The request body is not valid UTF-8: the byte" + (result.length() > 1 ? "s" : "") + shown
                    + " at offset " + at + " form no UTF-8 character (overlong forms, surrogates and stray bytes"
                    + " are refused).");
        }
        out.flip();
        if (out.hasRemaining() && out.get(0) == '\uFEFF') {
            out.position(1);
        }
        return out;
    }

    /**
     * JSON's {@code \\uD800} escapes can spell a lone surrogate, which is no Unicode text either.
     * The path to a value is kept as a stack of its steps and written out only for the error: a
     * path string made at every level would cost the square of the nesting times the names.
     */
    private static void checkSurrogates(JsonNode node, Deque<Object> path) {
        if (node.isTextual()) {
            int at = loneSurrogate(node.textValue());
            if (at >= 0) {
                throw invalid("The request body holds a lone surrogate U+" + hex(node.textValue().charAt(at))
                        + " in " + (path.isEmpty() ? "the value" : "'" + pathText(path) + "'") + " at index " + at
                        + "; JSON strings must be valid Unicode.");
            }
        } else if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                path.addLast(i);
                checkSurrogates(node.get(i), path);
                path.removeLast();
            }
        } else if (node.isObject()) {
            for (Map.Entry<String, JsonNode> field : node.properties()) {
                String name = field.getKey();
                int at = loneSurrogate(name);
                if (at >= 0) {
                    throw invalid("The request body holds a lone surrogate U+" + hex(name.charAt(at))
                            + " in a field name; JSON strings must be valid Unicode.");
                }
                path.addLast(name);
                checkSurrogates(field.getValue(), path);
                path.removeLast();
            }
        }
    }

    /** "a.b[2].c" of the steps (field names and array indices). */
    private static String pathText(Deque<Object> path) {
        StringBuilder text = new StringBuilder();
        for (Object step : path) {
            if (step instanceof Integer index) {
                text.append('[').append(index).append(']');
            } else {
                text.append(text.length() == 0 ? "" : ".").append(step);
            }
        }
        return text.toString();
    }

    /** The index of the first surrogate not part of a high-low pair, or -1. */
    static int loneSurrogate(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return i;
            }
        }
        return -1;
    }

    private static String hex(char c) {
        return String.format("%04X", (int) c);
    }

    private static ApiError invalid(String message) {
        return ApiError.invalid(message, null, "invalid_json");
    }
}
