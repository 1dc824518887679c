package ai.kiln.fuzz;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Mutators driven by one {@link Random}, so that a try is reproduced by its seed: byte-level edits
 * (bit flips, bytes that matter to JSON and UTF-8, cuts, copies, insertions) and tree-level edits
 * of JSON (a value replaced by another type or an extreme number, a key deleted, added or given
 * twice, an array emptied or grown).
 */
public final class Mutations {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /** Bytes that change how JSON or UTF-8 reads: structure, quotes, escapes, number parts, lead and continuation bytes. */
    private static final byte[] INTERESTING_BYTES = {
            0, '{', '}', '[', ']', '"', ':', ',', '\\', '-', '+', '.', 'e', 'E', '0', '1', '9', ' ', '\n',
            (byte) 0x7F, (byte) 0x80, (byte) 0xBF, (byte) 0xC0, (byte) 0xC1, (byte) 0xE0, (byte) 0xED,
            (byte) 0xF0, (byte) 0xF4, (byte) 0xF5, (byte) 0xFE, (byte) 0xFF};

    /** Text that a mutated JSON document may gain: tokens, extreme numbers, escapes, encodings a strict reader refuses. */
    private static final String[] INTERESTING_TEXT = {
            "null", "true", "false", "{}", "[]", "\"\"", "-1", "0", "1e999", "-1e999", "1e-999", "NaN", "Infinity",
            "9223372036854775808", "-9223372036854775809", "2147483648", "4294967808", "1.5", "0.0", "-0",
            "99999999999999999999999999999999999999", "\"\\ud800\"", "\"\\u0000\"", "\"a\\\"b\"", "\"\\x\"",
            "\"k\":1,", ",\"k\":1", "{\"a\":", "]", "}", "[[[[[[[[", "\u00e9", "\uffff", "\ud83d\ude00",
            "/* c */", "// c\n", "'s'", "\r\n", "\t"};

    private static final byte[][] INVALID_UTF8 = {
            {(byte) 0xC0, (byte) 0xAF}, {(byte) 0xE0, (byte) 0x80, (byte) 0xAF}, {(byte) 0xED, (byte) 0xA0, (byte) 0x80},
            {(byte) 0xF8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80}, {(byte) 0x80}, {(byte) 0xC3},
            {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}};

    private Mutations() {
    }

    /** {@code count} byte-level edits of {@code seed} (never longer than {@code maxLength}). */
    public static byte[] mutateBytes(byte[] seed, int count, int maxLength, Random random) {
        byte[] bytes = seed.clone();
        for (int i = 0; i < count; i++) {
            bytes = mutateOnce(bytes, random);
            if (bytes.length > maxLength) {
                bytes = java.util.Arrays.copyOf(bytes, maxLength);
            }
        }
        return bytes;
    }

    private static byte[] mutateOnce(byte[] bytes, Random random) {
        if (bytes.length == 0) {
            return new byte[] {INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)]};
        }
        int at = random.nextInt(bytes.length);
        switch (random.nextInt(8)) {
            case 0 -> {
                byte[] out = bytes.clone();
                out[at] ^= (byte) (1 << random.nextInt(8));
                return out;
            }
            case 1 -> {
                byte[] out = bytes.clone();
                out[at] = INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)];
                return out;
            }
            case 2 -> {
                return java.util.Arrays.copyOf(bytes, at);
            }
            case 3 -> {
                int length = 1 + random.nextInt(Math.min(64, bytes.length - at));
                return splice(bytes, at, at + length, new byte[0]);
            }
            case 4 -> {
                int length = 1 + random.nextInt(Math.min(64, bytes.length - at));
                int to = random.nextInt(bytes.length + 1);
                return splice(bytes, to, to, java.util.Arrays.copyOfRange(bytes, at, at + length));
            }
            case 5 -> {
                return splice(bytes, at, at, INTERESTING_TEXT[random.nextInt(INTERESTING_TEXT.length)]
                        .getBytes(StandardCharsets.UTF_8));
            }
            case 6 -> {
                return splice(bytes, at, at, INVALID_UTF8[random.nextInt(INVALID_UTF8.length)]);
            }
            default -> {
                byte[] junk = new byte[1 + random.nextInt(16)];
                random.nextBytes(junk);
                return splice(bytes, at, at, junk);
            }
        }
    }

    /** {@code bytes} with [from, to) replaced by {@code insert}. */
    public static byte[] splice(byte[] bytes, int from, int to, byte[] insert) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(bytes.length + insert.length);
        out.write(bytes, 0, from);
        out.write(insert, 0, insert.length);
        out.write(bytes, to, bytes.length - to);
        return out.toByteArray();
    }

    public static JsonNode parse(byte[] json) {
        try {
            return JSON.readTree(json);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("seed document is not JSON", e);
        }
    }

    /**
     * {@code count} tree-level edits of a copy of {@code document}, serialized; one edit in eight
     * is textual instead (a key given twice, which no tree can hold).
     */
    public static byte[] mutateJson(JsonNode document, int count, Random random) {
        JsonNode copy = document.deepCopy();
        int duplicates = 0;
        for (int i = 0; i < count; i++) {
            if (random.nextInt(8) == 0) {
                duplicates++;
                continue;
            }
            copy = mutateTree(copy, random);
        }
        byte[] bytes = write(copy);
        for (int i = 0; i < duplicates; i++) {
            bytes = duplicateKey(bytes, random);
        }
        return bytes;
    }

    private static JsonNode mutateTree(JsonNode root, Random random) {
        List<JsonNode> containers = new ArrayList<>();
        collectContainers(root, containers, 0);
        if (containers.isEmpty()) {
            return randomValue(random, 2);
        }
        JsonNode container = containers.get(random.nextInt(containers.size()));
        if (container instanceof ObjectNode object) {
            List<String> names = new ArrayList<>();
            object.fieldNames().forEachRemaining(names::add);
            int action = random.nextInt(10);
            if (names.isEmpty() || action == 0) {
                object.set(randomKey(random, names), randomValue(random, 2));
            } else {
                String name = names.get(random.nextInt(names.size()));
                if (action == 1) {
                    object.remove(name);
                } else if (action == 2) {
                    object.set(name, extremeNumber(random));
                } else {
                    object.set(name, replacement(object.get(name), random));
                }
            }
        } else if (container instanceof ArrayNode array) {
            int action = random.nextInt(6);
            if (array.isEmpty() || action == 0) {
                array.add(randomValue(random, 2));
            } else if (action == 1) {
                array.remove(random.nextInt(array.size()));
            } else if (action == 2) {
                array.removeAll();
            } else {
                array.set(random.nextInt(array.size()), replacement(array.get(random.nextInt(array.size())), random));
            }
        }
        return root;
    }

    /** A value for a slot that held {@code old}: usually another type, sometimes a near miss of the same type. */
    private static JsonNode replacement(JsonNode old, Random random) {
        if (random.nextInt(3) == 0 && old != null) {
            if (old.isNumber()) {
                return random.nextBoolean() ? extremeNumber(random) : NODES.numberNode(old.asLong() + random.nextInt(3) - 1);
            }
            if (old.isTextual()) {
                String text = old.textValue();
                return switch (random.nextInt(3)) {
                    case 0 -> NODES.textNode("");
                    case 1 -> NODES.textNode(text + text.substring(0, text.length() / 2));
                    default -> {
                        // Characters that mean something in a regex, a template or a file name.
                        int at = random.nextInt(text.length() + 1);
                        String special = "()[]{}*+?\\|^$.-/\u0000%#'\"";
                        yield NODES.textNode(text.substring(0, at) + special.charAt(random.nextInt(special.length()))
                                + text.substring(at));
                    }
                };
            }
        }
        return randomValue(random, 2);
    }

    private static String randomKey(Random random, List<String> names) {
        if (!names.isEmpty() && random.nextBoolean()) {
            return names.get(random.nextInt(names.size())) + (random.nextBoolean() ? "" : "_");
        }
        return randomString(random, 8);
    }

    private static void collectContainers(JsonNode node, List<JsonNode> out, int depth) {
        if (node.isContainerNode() && depth < 64) {
            out.add(node);
            for (JsonNode child : node) {
                collectContainers(child, out, depth + 1);
            }
        }
    }

    /** Any JSON value, nested at most {@code depth} deep. */
    public static JsonNode randomValue(Random random, int depth) {
        int kind = random.nextInt(depth > 0 ? 9 : 7);
        return switch (kind) {
            case 0 -> NODES.nullNode();
            case 1 -> NODES.booleanNode(random.nextBoolean());
            case 2 -> NODES.numberNode(random.nextInt(2048) - 16);
            case 3 -> extremeNumber(random);
            case 4 -> NODES.numberNode(random.nextDouble() * Math.pow(10, random.nextInt(40) - 20));
            case 5, 6 -> NODES.textNode(randomString(random, 12));
            case 7 -> {
                ArrayNode array = NODES.arrayNode();
                for (int i = random.nextInt(4); i > 0; i--) {
                    array.add(randomValue(random, depth - 1));
                }
                yield array;
            }
            default -> {
                ObjectNode object = NODES.objectNode();
                for (int i = random.nextInt(4); i > 0; i--) {
                    object.set(randomString(random, 6), randomValue(random, depth - 1));
                }
                yield object;
            }
        };
    }

    public static JsonNode extremeNumber(Random random) {
        return switch (random.nextInt(12)) {
            case 0 -> NODES.numberNode(-1);
            case 1 -> NODES.numberNode(0);
            case 2 -> NODES.numberNode(Integer.MAX_VALUE);
            case 3 -> NODES.numberNode(Integer.MIN_VALUE);
            case 4 -> NODES.numberNode(4294967808L);
            case 5 -> NODES.numberNode(Long.MAX_VALUE);
            case 6 -> NODES.numberNode(Long.MIN_VALUE);
            case 7 -> NODES.numberNode(new BigInteger("1" + "0".repeat(30)));
            case 8 -> NODES.numberNode(1e300);
            case 9 -> NODES.numberNode(-0.5);
            case 10 -> NODES.numberNode(new BigDecimal("1e-400"));
            default -> NODES.numberNode(1.5);
        };
    }

    /** Short text mixing ASCII, JSON-significant characters, accents, emoji and control characters. */
    public static String randomString(Random random, int maxLength) {
        String alphabet = "abcXYZ_09 <>|{}%#\"'\\\n\t\u00e9\u4e2d\u0000";
        StringBuilder out = new StringBuilder();
        for (int i = random.nextInt(maxLength + 1); i > 0; i--) {
            if (random.nextInt(16) == 0) {
                out.append("\ud83d\ude00");
            } else {
                out.append(alphabet.charAt(random.nextInt(alphabet.length())));
            }
        }
        return out.toString();
    }

    /** Copies one {@code "key": value} member of an object so that the key appears twice. */
    private static byte[] duplicateKey(byte[] json, Random random) {
        String text = new String(json, StandardCharsets.UTF_8);
        List<int[]> members = new ArrayList<>();
        // Serialized by Jackson: a member starts after '{' or ',' with '"'; finding its end needs a parse, so
        // only scalar members (up to the next ',' or '}' outside a string) are copied.
        for (int i = 0; i + 1 < text.length(); i++) {
            char c = text.charAt(i);
            if ((c == '{' || c == ',') && text.charAt(i + 1) == '"') {
                int end = scalarMemberEnd(text, i + 1);
                if (end > 0) {
                    members.add(new int[] {i + 1, end});
                }
            }
        }
        if (members.isEmpty()) {
            return json;
        }
        int[] member = members.get(random.nextInt(members.size()));
        String copy = text.substring(member[0], member[1]);
        return (text.substring(0, member[1]) + "," + copy + text.substring(member[1])).getBytes(StandardCharsets.UTF_8);
    }

    private static int scalarMemberEnd(String text, int start) {
        boolean inString = false;
        for (int i = start; i < text.length(); i++) {
            char c = text.charAt(i);
            if (inString) {
                if (c == '\\') {
                    i++;
                } else if (c == '"') {
                    inString = false;
                }
            } else if (c == '"') {
                inString = true;
            } else if (c == '{' || c == '[') {
                return -1;
            } else if (c == ',' || c == '}' || c == ']') {
                return i;
            }
        }
        return -1;
    }

    public static byte[] write(JsonNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
