package ai.kiln.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed reads of one JSON object of a model's config files. A field that is absent takes its
 * default; JSON null counts as absent only where the caller says Hugging Face accepts it
 * ({@code nullable}); any other value of the wrong type or outside its range is refused, naming
 * the file, the field and what was found, before the value takes part in any arithmetic.
 */
final class ConfigFields {

    private final String file;
    private final String prefix;
    private final JsonNode object;

    /**
     * @param file   the file name errors start with ("config.json")
     * @param prefix how fields of this object are named in errors ("" or "rope_scaling.")
     * @param object a JSON object
     */
    ConfigFields(String file, String prefix, JsonNode object) {
        this.file = file;
        this.prefix = prefix;
        this.object = object;
    }

    ModelLoadException problem(String field, String problem) {
        return new ModelLoadException(file + ": " + prefix + field + " " + problem);
    }

    boolean has(String field) {
        return object.has(field);
    }

    /** The field's value, or null when it is absent (or JSON null and {@code nullable}). */
    private JsonNode value(String field, boolean nullable) {
        JsonNode node = object.get(field);
        return node == null || (nullable && node.isNull()) ? null : node;
    }

    /** An integer in [min, max]; null when absent (or null and nullable). */
    Long integer(String field, long min, long max, boolean nullable) {
        JsonNode node = value(field, nullable);
        if (node == null) {
            return null;
        }
        if (!node.isIntegralNumber() || !node.canConvertToLong() || node.longValue() < min || node.longValue() > max) {
            throw problem(field, "must be an integer in [" + min + ", " + max + "], got " + describe(node));
        }
        return node.longValue();
    }

    int requiredInt(String field, int min, int max) {
        Long value = integer(field, min, max, false);
        if (value == null) {
            throw problem(field, "is missing (an integer in [" + min + ", " + max + "])");
        }
        return value.intValue();
    }

    int optionalInt(String field, int min, int max, int absent, boolean nullable) {
        Long value = integer(field, min, max, nullable);
        return value == null ? absent : value.intValue();
    }

    /** A finite number > 0. */
    double positiveNumber(String field, double absent) {
        JsonNode node = value(field, false);
        if (node == null) {
            return absent;
        }
        if (!node.isNumber() || !Double.isFinite(node.doubleValue()) || !(node.doubleValue() > 0)) {
            throw problem(field, "must be a number > 0, got " + describe(node));
        }
        return node.doubleValue();
    }

    boolean bool(String field, boolean absent) {
        JsonNode node = value(field, false);
        if (node == null) {
            return absent;
        }
        if (!node.isBoolean()) {
            throw problem(field, "must be true or false, got " + describe(node));
        }
        return node.booleanValue();
    }

    String text(String field, String absent, boolean nullable) {
        JsonNode node = value(field, nullable);
        if (node == null) {
            return absent;
        }
        if (!node.isTextual()) {
            throw problem(field, "must be a string" + (nullable ? " or null" : "") + ", got " + describe(node));
        }
        return node.textValue();
    }

    /** A JSON object (null when absent or JSON null: Hugging Face's "none"). */
    JsonNode objectOrNull(String field) {
        JsonNode node = value(field, true);
        if (node != null && !node.isObject()) {
            throw problem(field, "must be an object or null, got " + describe(node));
        }
        return node;
    }

    /** Token ids given as one integer or a list of integers, each in [0, limit); empty when absent or null. */
    List<Integer> tokenIds(String field, int limit) {
        JsonNode node = value(field, true);
        List<Integer> ids = new ArrayList<>();
        if (node == null) {
            return ids;
        }
        String expected = "must be an integer or a list of integers in [0, " + limit + ") (the vocabulary), got ";
        if (node.isArray()) {
            for (JsonNode element : node) {
                if (!isIdBelow(element, limit)) {
                    throw problem(field, expected + describe(node));
                }
                ids.add(element.intValue());
            }
        } else if (isIdBelow(node, limit)) {
            ids.add(node.intValue());
        } else {
            throw problem(field, expected + describe(node));
        }
        return ids;
    }

    /** One token id in [0, limit), or -1 when absent or null. */
    int tokenId(String field, int limit) {
        JsonNode node = value(field, true);
        if (node == null) {
            return -1;
        }
        if (!isIdBelow(node, limit)) {
            throw problem(field, "must be an integer in [0, " + limit + ") (the vocabulary) or null, got "
                    + describe(node));
        }
        return node.intValue();
    }

    private static boolean isIdBelow(JsonNode node, int limit) {
        return node.isIntegralNumber() && node.canConvertToInt() && node.intValue() >= 0 && node.intValue() < limit;
    }

    /** What a value is, for an error message: "an object", "null", "the string \"x\"", "1.5". */
    static String describe(JsonNode node) {
        String text = switch (node.getNodeType()) {
            case OBJECT -> "an object";
            case ARRAY -> "an array " + node;
            case STRING -> "the string " + node;
            case NULL -> "null";
            default -> node.toString();
        };
        return text.length() > 80 ? text.substring(0, 77) + "..." : text;
    }
}
