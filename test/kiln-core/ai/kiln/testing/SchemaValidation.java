package ai.kiln.testing;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SchemaValidatorsConfig;
import com.networknt.schema.SpecVersion;
import java.util.List;

/**
 * Checks JSON texts against JSON schemas with an independent validator (networknt's, draft
 * 2020-12, formats asserted), for the tests of structured output. The text must be one JSON value
 * and nothing else.
 */
public final class SchemaValidation {

    // NOTE: numbers as decimals: a valid JSON number such as 1e999 is past a double's range.
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);
    private static final JsonSchemaFactory FACTORY = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V202012);
    // NOTE: formats are asserted (draft 2020-12 makes them annotations by default).
    private static final SchemaValidatorsConfig CONFIG = SchemaValidatorsConfig.builder().formatAssertionsEnabled(true)
            .build();

    private SchemaValidation() {
    }

    /** What the validator finds wrong with {@code text} under {@code schemaJson}; empty when it is valid. */
    public static List<String> problems(String schemaJson, String text) {
        JsonNode value;
        try {
            value = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            return List.of("not JSON: " + e.getOriginalMessage());
        }
        if (value == null || value.isMissingNode()) {
            return List.of("not JSON: empty");
        }
        JsonSchema schema = FACTORY.getSchema(schemaJson, CONFIG);
        return schema.validate(value).stream().map(Object::toString).toList();
    }
}
