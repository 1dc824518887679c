package ai.kiln.langchain4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.model.chat.request.json.JsonAnyOfSchema;
import dev.langchain4j.model.chat.request.json.JsonArraySchema;
import dev.langchain4j.model.chat.request.json.JsonBooleanSchema;
import dev.langchain4j.model.chat.request.json.JsonEnumSchema;
import dev.langchain4j.model.chat.request.json.JsonIntegerSchema;
import dev.langchain4j.model.chat.request.json.JsonNullSchema;
import dev.langchain4j.model.chat.request.json.JsonNumberSchema;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonRawSchema;
import dev.langchain4j.model.chat.request.json.JsonReferenceSchema;
import dev.langchain4j.model.chat.request.json.JsonSchemaElement;
import dev.langchain4j.model.chat.request.json.JsonStringSchema;

/**
 * LangChain4j's {@link JsonSchemaElement}s as the JSON schema documents Kiln's grammar compiles
 * (docs/api.md, "JSON schemas"): the keywords each element carries, nothing added. References
 * point into {@code #/$defs/}, where {@link JsonObjectSchema#definitions()} are written, as
 * LangChain4j's own providers write them.
 */
final class JsonSchemas {

    static final ObjectMapper JSON = new ObjectMapper();

    private JsonSchemas() {
    }

    static ObjectNode toJson(JsonSchemaElement element) {
        ObjectNode node = JSON.createObjectNode();
        if (element instanceof JsonObjectSchema object) {
            node.put("type", "object");
            description(node, object.description());
            if (object.properties() != null && !object.properties().isEmpty()) {
                ObjectNode properties = node.putObject("properties");
                object.properties().forEach((name, schema) -> properties.set(name, toJson(schema)));
            }
            if (object.required() != null && !object.required().isEmpty()) {
                ArrayNode required = node.putArray("required");
                object.required().forEach(required::add);
            }
            if (object.additionalProperties() != null) {
                node.put("additionalProperties", object.additionalProperties());
            }
            if (object.definitions() != null && !object.definitions().isEmpty()) {
                ObjectNode definitions = node.putObject("$defs");
                object.definitions().forEach((name, schema) -> definitions.set(name, toJson(schema)));
            }
        } else if (element instanceof JsonArraySchema array) {
            node.put("type", "array");
            description(node, array.description());
            if (array.items() != null) {
                node.set("items", toJson(array.items()));
            }
        } else if (element instanceof JsonAnyOfSchema anyOf) {
            description(node, anyOf.description());
            ArrayNode alternatives = node.putArray("anyOf");
            anyOf.anyOf().forEach(schema -> alternatives.add(toJson(schema)));
        } else if (element instanceof JsonEnumSchema enumeration) {
            node.put("type", "string");
            description(node, enumeration.description());
            ArrayNode values = node.putArray("enum");
            enumeration.enumValues().forEach(values::add);
        } else if (element instanceof JsonStringSchema string) {
            typed(node, "string", string.description());
        } else if (element instanceof JsonIntegerSchema integer) {
            typed(node, "integer", integer.description());
        } else if (element instanceof JsonNumberSchema number) {
            typed(node, "number", number.description());
        } else if (element instanceof JsonBooleanSchema bool) {
            typed(node, "boolean", bool.description());
        } else if (element instanceof JsonNullSchema) {
            node.put("type", "null");
        } else if (element instanceof JsonReferenceSchema reference) {
            node.put("$ref", "#/$defs/" + reference.reference());
        } else if (element instanceof JsonRawSchema raw) {
            return rawSchema(raw.schema());
        } else {
            throw new InvalidRequestException("Kiln cannot express the JSON schema element "
                    + element.getClass().getName());
        }
        return node;
    }

    private static ObjectNode rawSchema(String text) {
        try {
            JsonNode parsed = JSON.readTree(text);
            if (parsed instanceof ObjectNode object) {
                return object;
            }
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException("a raw JSON schema is not JSON: " + e.getOriginalMessage(), e);
        }
        throw new InvalidRequestException("a raw JSON schema must be a JSON object, got " + text);
    }

    private static void typed(ObjectNode node, String type, String description) {
        node.put("type", type);
        description(node, description);
    }

    private static void description(ObjectNode node, String description) {
        if (description != null) {
            node.put("description", description);
        }
    }
}
