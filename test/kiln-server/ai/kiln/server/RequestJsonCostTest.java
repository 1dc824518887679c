package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A body under the size limit costs time and memory in proportion to its size: 900 nested
 * objects with 8,000-character names (7.2 MB) once took gigabytes, a path string being built at
 * every level for the surrogate check.
 */
class RequestJsonCostTest {

    @Test
    void deeplyNestedLongNamesParseInLinearTimeAndMemory() {
        String name = "k".repeat(8000);
        int depth = 900;
        StringBuilder body = new StringBuilder();
        for (int i = 0; i < depth; i++) {
            body.append("{\"").append(name).append("\":");
        }
        body.append('1');
        body.append("}".repeat(depth));
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        JsonNode parsed = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> RequestJson.parse(bytes));
        JsonNode node = parsed;
        for (int i = 0; i < depth; i++) {
            node = node.get(name);
        }
        assertEquals(1, node.asInt());
    }
}
