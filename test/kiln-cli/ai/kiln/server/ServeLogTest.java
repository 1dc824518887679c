package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code kiln serve}'s log as its own process writes it: no SLF4J complaint at start (the CLI
 * brings a logging backend), timestamped text lines by default, and with {@code --log-format json}
 * one JSON object per line, a request's fields among them.
 */
class ServeLogTest {

    static final ObjectMapper JSON = new ObjectMapper();

    /** Runs the server with {@code extra}, answers one completion and /health, stops it with SIGTERM; its output lines. */
    static List<String> serveOneRequest(String... extra) throws Exception {
        try (ServeProcess server = ServeProcess.start(extra)) {
            Process process = server.process;
            String base = server.base();
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
            DrainTest.awaitStatus(http, base + "/ready", 200, Duration.ofSeconds(60));
            HttpResponse<String> completion = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .header("x-request-id", "log-test-1")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"llama3-gqa\", \"prompt\": \"hi\","
                            + " \"max_tokens\": 3, \"temperature\": 0}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, completion.statusCode(), completion.body());
            assertTrue(process.toHandle().destroy());
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the server did not stop");
            server.awaitOutputEnd();
            assertEquals(0, process.exitValue(), String.join("\n", server.lines()));
            return server.lines();
        }
    }

    @Test
    void textLogHasNoSlf4jWarningsAndTimestampedLines() throws Exception {
        List<String> lines = serveOneRequest();
        assertFalse(lines.isEmpty());
        for (String line : lines) {
            assertFalse(line.contains("SLF4J"), "a logging complaint: " + line);
            assertTrue(line.matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z (INFO|WARN|ERROR) .*"),
                    "not a log line: " + line);
        }
        assertTrue(lines.stream().anyMatch(l -> l.contains("request_id=log-test-1 POST /v1/completions 200")),
                String.join("\n", lines));
        assertTrue(lines.stream().anyMatch(l -> l.endsWith(" stopped")), String.join("\n", lines));
    }

    @Test
    void jsonLogIsOneObjectPerLineWithTheRequestFields() throws Exception {
        List<String> lines = serveOneRequest("--log-format", "json");
        JsonNode request = null;
        for (String line : lines) {
            JsonNode event = JSON.readTree(line);
            assertTrue(event.isObject(), line);
            for (String field : List.of("time", "level", "logger", "message")) {
                assertTrue(event.path(field).isTextual(), "no " + field + ": " + line);
            }
            if (event.path("request_id").asText().equals("log-test-1")) {
                request = event;
            }
        }
        assertTrue(request != null, "no line for the request: " + String.join("\n", lines));
        assertEquals("ai.kiln.server.access", request.get("logger").asText());
        assertEquals("INFO", request.get("level").asText());
        assertEquals("POST", request.get("method").asText());
        assertEquals("/v1/completions", request.get("path").asText());
        assertEquals(200, request.get("status").asInt());
        assertTrue(request.get("status").isInt() && request.get("duration_ms").isNumber(), request.toString());
        assertTrue(request.get("prompt_tokens").asInt() > 0, request.toString());
        assertEquals(3, request.get("completion_tokens").asInt());
    }
}
