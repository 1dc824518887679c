package ai.kiln.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The structured-output tests' oracle refuses what it must: formats are asserted, bounds and
 * lengths checked, trailing text and non-JSON refused (else the property test could not fail).
 */
class SchemaValidationTest {

    @Test
    void theOracleRefusesInvalidValues() {
        assertEquals(List.of(), SchemaValidation.problems("{\"type\": \"string\", \"format\": \"date\"}", "\"2024-02-28\""));
        assertFalse(SchemaValidation.problems("{\"type\": \"string\", \"format\": \"date\"}", "\"2024-02-30\"").isEmpty());
        assertFalse(SchemaValidation.problems("{\"format\": \"email\"}", "\"not an email\"").isEmpty());
        assertFalse(SchemaValidation.problems("{\"format\": \"ipv4\"}", "\"256.1.1.1\"").isEmpty());
        assertFalse(SchemaValidation.problems("{\"type\": \"integer\", \"exclusiveMinimum\": 3}", "3").isEmpty());
        assertFalse(SchemaValidation.problems("{\"type\": \"string\", \"maxLength\": 2}", "\"abc\"").isEmpty());
        assertFalse(SchemaValidation.problems("{\"type\": \"object\", \"required\": [\"a\"]}", "{}").isEmpty());
        assertFalse(SchemaValidation.problems("{}", "{} {}").isEmpty());
        assertFalse(SchemaValidation.problems("{}", "{\"a\": ").isEmpty());
    }
}
