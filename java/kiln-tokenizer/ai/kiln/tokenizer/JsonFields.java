package ai.kiln.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/** Typed access to JSON fields that reports problems with the file name and the field's path. */
final class JsonFields {
    private final Path file;

    JsonFields(Path file) {
        this.file = file;
    }

    Path file() {
        return file;
    }

    TokenizerLoadException problem(String path, String problem) {
        return new TokenizerLoadException(file, "field " + path + " " + problem);
    }

    /** The field's node, or null when the field is absent or JSON null. */
    static JsonNode optional(JsonNode parent, String field) {
        JsonNode node = parent.get(field);
        return node == null || node.isNull() ? null : node;
    }

    JsonNode requireObject(JsonNode parent, String field, String path) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        if (node == null) {
            throw problem(path, "is missing");
        }
        if (!node.isObject()) {
            throw problem(path, "must be an object");
        }
        return node;
    }

    JsonNode requireArray(JsonNode parent, String field, String path) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        if (node == null) {
            throw problem(path, "is missing");
        }
        if (!node.isArray()) {
            throw problem(path, "must be an array");
        }
        return node;
    }

    String requireText(JsonNode parent, String field, String path) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        if (node == null) {
            throw problem(path, "is missing");
        }
        if (!node.isTextual()) {
            throw problem(path, "must be a string");
        }
        return node.textValue();
    }

    String optionalText(JsonNode parent, String field, String path) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        if (node == null) {
            return null;
        }
        if (!node.isTextual()) {
            throw problem(path, "must be a string");
        }
        return node.textValue();
    }

    boolean optionalBoolean(JsonNode parent, String field, String path, boolean defaultValue) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        if (node == null) {
            return defaultValue;
        }
        if (!node.isBoolean()) {
            throw problem(path, "must be true or false");
        }
        return node.booleanValue();
    }

    int requireInt(JsonNode parent, String field, String path) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        if (node == null) {
            throw problem(path, "is missing");
        }
        return asInt(node, path);
    }

    int optionalInt(JsonNode parent, String field, String path, int defaultValue) throws TokenizerLoadException {
        JsonNode node = optional(parent, field);
        return node == null ? defaultValue : asInt(node, path);
    }

    int asInt(JsonNode node, String path) throws TokenizerLoadException {
        if (!node.isIntegralNumber() || !node.canConvertToInt()) {
            throw problem(path, "must be an integer");
        }
        return node.intValue();
    }

    /** A single character (Rust {@code char}) given as a one-code-point string. */
    int requireCharacter(JsonNode parent, String field, String path) throws TokenizerLoadException {
        String text = requireText(parent, field, path);
        if (text.codePointCount(0, text.length()) != 1) {
            throw problem(path, "must be a single character");
        }
        return text.codePointAt(0);
    }
}
