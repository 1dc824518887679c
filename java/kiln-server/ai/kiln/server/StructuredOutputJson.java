package ai.kiln.server;

import ai.kiln.api.StructuredOutput;
import ai.kiln.engine.ApiMapping;
import ai.kiln.grammar.GrammarException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Reads a request's structured-output fields into one {@link StructuredOutput}: OpenAI's {@code
 * response_format} ({@code text}, {@code json_object}, {@code json_schema}), vLLM's older {@code
 * guided_json}, {@code guided_regex} and {@code guided_choice}, and vLLM's newer {@code
 * structured_outputs} object ({@code json}, {@code regex}, {@code choice}, {@code json_object}).
 * At most one constraint may be given. The schema or pattern is compiled here (without the
 * vocabulary, which the engine adds), so that a bad one is a 400 naming the field and the problem.
 */
final class StructuredOutputJson {

    /** The body fields read here. */
    static final Set<String> FIELDS = Set.of("response_format", "guided_json", "guided_regex", "guided_choice",
            "guided_grammar", "guided_whitespace_pattern", "guided_decoding_backend", "structured_outputs");
    private static final Set<String> STRUCTURED_OUTPUTS_KEYS = Set.of("json", "regex", "choice", "json_object",
            "grammar", "structural_tag", "whitespace_pattern", "disable_any_whitespace", "disable_additional_properties",
            "disable_fallback");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A constraint and the field it came from. */
    private record Given(String field, StructuredOutput constraint) {
    }

    private StructuredOutputJson() {
    }

    /** The body's constraint, or null for free text. */
    static StructuredOutput read(BodyFields body) {
        List<Given> given = new ArrayList<>();
        responseFormat(body, given);
        for (String unsupported : List.of("guided_grammar", "guided_whitespace_pattern")) {
            if (body.has(unsupported)) {
                throw ApiError.invalid("'" + unsupported + "' is not supported; use a JSON schema, a regular expression"
                        + " or a choice list.", unsupported, "unsupported_parameter");
            }
        }
        JsonNode json = body.node("guided_json");
        if (json != null) {
            given.add(new Given("guided_json", schema("guided_json", json)));
        }
        String regex = body.string("guided_regex");
        if (regex != null) {
            given.add(new Given("guided_regex", regexOf("guided_regex", regex)));
        }
        JsonNode choice = body.node("guided_choice");
        if (choice != null) {
            given.add(new Given("guided_choice", choiceOf("guided_choice", choice)));
        }
        body.string("guided_decoding_backend"); // accepted (type-checked) and ignored: Kiln has one
        structuredOutputs(body, given);
        if (given.size() > 1) {
            throw ApiError.invalid("Only one structured-output constraint may be given, got '" + given.get(0).field()
                    + "' and '" + given.get(1).field() + "'.", given.get(1).field());
        }
        if (given.isEmpty()) {
            return null;
        }
        Given g = given.get(0);
        try {
            ApiMapping.grammar(g.constraint());
        } catch (GrammarException e) {
            throw ApiError.invalid("'" + g.field() + "' is invalid: " + e.getMessage() + ".", g.field());
        }
        return g.constraint();
    }

    private static void responseFormat(BodyFields body, List<Given> given) {
        JsonNode format = body.node("response_format");
        if (format == null) {
            return;
        }
        if (!format.isObject()) {
            throw BodyFields.wrongType("response_format", "an object", format);
        }
        BodyFields fields = new BodyFields(format);
        String type = fields.string("type");
        if (type == null) {
            throw ApiError.invalid("'response_format.type' is a required field.", "response_format.type",
                    "missing_required_parameter");
        }
        switch (type) {
            case "text" -> {
            }
            case "json_object" -> given.add(new Given("response_format", StructuredOutput.jsonObject()));
            case "json_schema" -> {
                JsonNode spec = fields.node("json_schema");
                if (spec == null) {
                    throw ApiError.invalid("'response_format.json_schema' is a required field with type 'json_schema'.",
                            "response_format.json_schema", "missing_required_parameter");
                }
                if (!spec.isObject()) {
                    throw BodyFields.wrongType("response_format.json_schema", "an object", spec);
                }
                BodyFields specFields = new BodyFields(spec);
                String where = "response_format.json_schema";
                checkType(specFields, "name", JsonNode::isTextual, "a string", where);
                checkType(specFields, "description", JsonNode::isTextual, "a string", where);
                checkType(specFields, "strict", JsonNode::isBoolean, "a boolean", where);
                JsonNode schema = specFields.node("schema");
                if (schema == null) {
                    throw ApiError.invalid("'" + where + ".schema' is a required field.", where + ".schema",
                            "missing_required_parameter");
                }
                if (!schema.isObject() && !schema.isBoolean()) {
                    throw BodyFields.wrongType(where + ".schema", "a JSON schema object", schema);
                }
                given.add(new Given("response_format", StructuredOutput.jsonSchema(schema.toString())));
            }
            default -> throw ApiError.invalid("'response_format.type' must be 'text', 'json_object' or 'json_schema',"
                    + " got '" + type + "'.", "response_format.type");
        }
    }

    private static void checkType(BodyFields fields, String name, java.util.function.Predicate<JsonNode> ok,
            String expected, String where) {
        JsonNode node = fields.node(name);
        if (node != null && !ok.test(node)) {
            throw BodyFields.wrongType(where + "." + name, expected, node);
        }
    }

    private static void structuredOutputs(BodyFields body, List<Given> given) {
        JsonNode node = body.node("structured_outputs");
        if (node == null) {
            return;
        }
        if (!node.isObject()) {
            throw BodyFields.wrongType("structured_outputs", "an object", node);
        }
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!STRUCTURED_OUTPUTS_KEYS.contains(key)) {
                throw ApiError.invalid("'structured_outputs." + key + "' is not a structured-output option.",
                        "structured_outputs." + key);
            }
        }
        BodyFields fields = new BodyFields(node);
        for (String unsupported : List.of("grammar", "structural_tag", "whitespace_pattern")) {
            if (fields.has(unsupported)) {
                throw ApiError.invalid("'structured_outputs." + unsupported + "' is not supported; use json, regex,"
                        + " choice or json_object.", "structured_outputs." + unsupported, "unsupported_parameter");
            }
        }
        JsonNode json = fields.node("json");
        if (json != null) {
            given.add(new Given("structured_outputs.json", schema("structured_outputs.json", json)));
        }
        JsonNode regex = fields.node("regex");
        if (regex != null) {
            if (!regex.isTextual()) {
                throw BodyFields.wrongType("structured_outputs.regex", "a string", regex);
            }
            given.add(new Given("structured_outputs.regex", regexOf("structured_outputs.regex", regex.textValue())));
        }
        JsonNode choice = fields.node("choice");
        if (choice != null) {
            given.add(new Given("structured_outputs.choice", choiceOf("structured_outputs.choice", choice)));
        }
        JsonNode jsonObject = fields.node("json_object");
        if (jsonObject != null) {
            if (!jsonObject.isBoolean()) {
                throw BodyFields.wrongType("structured_outputs.json_object", "a boolean", jsonObject);
            }
            if (jsonObject.booleanValue()) {
                given.add(new Given("structured_outputs.json_object", StructuredOutput.jsonObject()));
            }
        }
    }

    /** A schema given as a JSON object (or boolean), or as a string holding one. */
    private static StructuredOutput schema(String field, JsonNode node) {
        if (node.isTextual()) {
            try {
                node = JSON.readTree(node.textValue());
            } catch (JsonProcessingException e) {
                throw ApiError.invalid("'" + field + "' is invalid: the schema is not valid JSON: "
                        + e.getOriginalMessage() + ".", field);
            }
        }
        if (node == null || !(node.isObject() || node.isBoolean())) {
            throw ApiError.invalid("'" + field + "' must be a JSON schema (an object, or a string holding one).", field);
        }
        return StructuredOutput.jsonSchema(node.toString());
    }

    private static StructuredOutput regexOf(String field, String pattern) {
        if (pattern.isEmpty()) {
            throw ApiError.invalid("'" + field + "' must not be empty.", field);
        }
        return StructuredOutput.regex(pattern);
    }

    private static StructuredOutput choiceOf(String field, JsonNode node) {
        if (!node.isArray() || node.isEmpty()) {
            throw ApiError.invalid("'" + field + "' must be a non-empty array of strings.", field);
        }
        List<String> choices = new ArrayList<>();
        for (JsonNode c : node) {
            if (!c.isTextual()) {
                throw BodyFields.wrongType(field + "[" + choices.size() + "]", "a string", c);
            }
            choices.add(c.textValue());
        }
        return StructuredOutput.choice(choices);
    }
}
