package ai.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeType;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed reads of a JSON request body's fields. JSON null and an absent field both read as "not
 * given"; a value of the wrong type is a 400 naming the field, what it must be and what it was.
 */
final class BodyFields {

    private final ObjectNode body;

    BodyFields(JsonNode body) {
        if (!(body instanceof ObjectNode object)) {
            throw ApiError.invalid("The request body must be a JSON object, got " + describe(body) + ".", null);
        }
        this.body = object;
    }

    boolean has(String name) {
        JsonNode node = body.get(name);
        return node != null && !node.isNull();
    }

    JsonNode node(String name) {
        JsonNode node = body.get(name);
        return node == null || node.isNull() ? null : node;
    }

    String requiredString(String name) {
        String value = string(name);
        if (value == null) {
            throw ApiError.invalid("'" + name + "' is a required field.", name, "missing_required_parameter");
        }
        return value;
    }

    String string(String name) {
        JsonNode node = node(name);
        if (node == null) {
            return null;
        }
        if (!node.isTextual()) {
            throw wrongType(name, "a string", node);
        }
        return node.textValue();
    }

    Integer integer(String name) {
        JsonNode node = node(name);
        if (node == null) {
            return null;
        }
        return toInt(name, node);
    }

    Long longValue(String name) {
        JsonNode node = node(name);
        if (node == null) {
            return null;
        }
        if (!node.isIntegralNumber() && !(node.isNumber() && node.asDouble() == Math.rint(node.asDouble()))) {
            throw wrongType(name, "an integer", node);
        }
        if (!node.canConvertToLong()) {
            throw ApiError.invalid("'" + name + "' is out of range, got " + node + ".", name);
        }
        return node.asLong();
    }

    Double number(String name) {
        JsonNode node = node(name);
        if (node == null) {
            return null;
        }
        if (!node.isNumber()) {
            throw wrongType(name, "a number", node);
        }
        return node.asDouble();
    }

    Boolean bool(String name) {
        JsonNode node = node(name);
        if (node == null) {
            return null;
        }
        if (!node.isBoolean()) {
            throw wrongType(name, "a boolean", node);
        }
        return node.booleanValue();
    }

    ObjectNode object(String name) {
        JsonNode node = node(name);
        if (node == null) {
            return null;
        }
        if (!(node instanceof ObjectNode object)) {
            throw wrongType(name, "an object", node);
        }
        return object;
    }

    /** {@code stop}: a string or a list of strings (at most 4 in OpenAI's API; Kiln takes up to 16). */
    List<String> stringOrStrings(String name, int maxItems) {
        JsonNode node = node(name);
        if (node == null) {
            return List.of();
        }
        if (node.isTextual()) {
            return List.of(node.textValue());
        }
        if (!node.isArray()) {
            throw wrongType(name, "a string or an array of strings", node);
        }
        if (node.size() > maxItems) {
            throw ApiError.invalid("'" + name + "' holds at most " + maxItems + " items, got " + node.size() + ".", name);
        }
        List<String> out = new ArrayList<>();
        for (JsonNode item : node) {
            if (!item.isTextual()) {
                throw wrongType(name + "[" + out.size() + "]", "a string", item);
            }
            out.add(item.textValue());
        }
        return out;
    }

    static int toInt(String name, JsonNode node) {
        if (!node.isNumber() || !(node.isIntegralNumber() || node.asDouble() == Math.rint(node.asDouble()))) {
            throw wrongType(name, "an integer", node);
        }
        if (!node.canConvertToInt() && !(node.isFloatingPointNumber()
                && Math.abs(node.asDouble()) <= Integer.MAX_VALUE)) {
            throw ApiError.invalid("'" + name + "' is out of range, got " + node + ".", name);
        }
        return node.isIntegralNumber() ? node.intValue() : (int) node.asDouble();
    }

    static ApiError wrongType(String name, String expected, JsonNode got) {
        return ApiError.invalid("'" + name + "' must be " + expected + ", got " + describe(got) + ".", name,
                "invalid_type");
    }

    static String describe(JsonNode node) {
        if (node == null || node.isMissingNode()) {
            return "nothing";
        }
        JsonNodeType type = node.getNodeType();
        return switch (type) {
            case STRING -> "a string";
            case NUMBER -> node.isIntegralNumber() ? "an integer (" + node + ")" : "a number (" + node + ")";
            case BOOLEAN -> "a boolean";
            case ARRAY -> "an array";
            case OBJECT, POJO -> "an object";
            case NULL -> "null";
            default -> type.name().toLowerCase();
        };
    }
}
