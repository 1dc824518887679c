package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every kind of bad request gets its status and an OpenAI-style error body naming the problem,
 * and the server answers a good request correctly after each.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BadInputTest {

    static final long BODY_LIMIT = 64 * 1024;
    static final String KEY = "sk-kiln-test-key";

    ServerHarness harness;
    ServerHarness keyed;
    String goodText;

    @BeforeAll
    void start() {
        harness = ServerHarness.start(ServerHarness.serverOptions().withLimits(BODY_LIMIT, Duration.ofSeconds(10),
                1 << 20), ServerHarness.engineOptions().build());
        keyed = ServerHarness.start(ServerHarness.serverOptions().withApiKey(KEY), ServerHarness.engineOptions().build());
        goodText = ServerHarness.json(harness.post("/v1/completions", good()).body()).at("/choices/0/text").asText();
    }

    @AfterAll
    void stop() throws Exception {
        harness.close();
        keyed.close();
    }

    static String good() {
        return "{\"model\": \"llama3-gqa\", \"prompt\": \"Hello world\", \"max_tokens\": 8, \"temperature\": 0}";
    }

    /** After every case the server still answers a good request, with the same greedy text. */
    @AfterEach
    void serverStillAnswers() {
        HttpResponse<String> r = harness.post("/v1/completions", good());
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(goodText, ServerHarness.json(r.body()).at("/choices/0/text").asText());
    }

    static Stream<Arguments> badBodies() {
        String c = "/v1/completions";
        String chat = "/v1/chat/completions";
        String tooLong = IntStream.range(0, 600).mapToObj(i -> Integer.toString(10 + i % 400))
                .collect(Collectors.joining(","));
        return Stream.of(
                // path, body, status, param, code, words the message must hold
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": ", 400, null, "invalid_json", "not valid JSON"),
                bad(c, "", 400, null, "invalid_json", "empty"),
                bad(c, "[1, 2]", 400, null, null, "JSON object"),
                bad(c, "{\"prompt\": \"hi\"}", 400, "model", "missing_required_parameter", "model"),
                bad(c, "{\"model\": \"llama3-gqa\"}", 400, "prompt", "missing_required_parameter", "prompt"),
                bad(chat, "{\"model\": \"llama3-gqa\"}", 400, "messages", "missing_required_parameter", "messages"),
                bad(c, "{\"model\": 7, \"prompt\": \"hi\"}", 400, "model", "invalid_type", "string"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": 5}", 400, "prompt", "invalid_type", "prompt"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"max_tokens\": \"ten\"}", 400,
                        "max_tokens", "invalid_type", "integer"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"max_tokens\": 2.5}", 400,
                        "max_tokens", "invalid_type", "integer"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"temperature\": \"hot\"}", 400,
                        "temperature", "invalid_type", "number"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"stream\": \"yes\"}", 400,
                        "stream", "invalid_type", "boolean"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"stop\": 3}", 400, "stop",
                        "invalid_type", "string"),
                bad(chat, "{\"model\": \"llama3-gqa\", \"messages\": \"hi\"}", 400, "messages",
                        "invalid_type", "array"),
                bad(chat, "{\"model\": \"llama3-gqa\", \"messages\": []}", 400, "messages", null,
                        "at least one"),
                bad(chat, "{\"model\": \"llama3-gqa\", \"messages\": [{\"content\": \"hi\"}]}", 400,
                        "messages[0].role", "missing_required_parameter", "role"),
                bad(chat, "{\"model\": \"llama3-gqa\", \"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}",
                        400, "messages[0].role", null, "wizard"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"max_tokens\": -1}", 400,
                        "max_tokens", null, ">= 1"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"temperature\": -0.5}", 400,
                        "temperature", null, "[0, 2]"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"top_p\": 0}", 400, "top_p", null,
                        "(0, 1]"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"top_p\": 1.5}", 400, "top_p",
                        null, "(0, 1]"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"n\": 0}", 400, "n", null, ">= 1"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"logprobs\": 21}", 400, "logprobs",
                        null, "[0, 20]"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"presence_penalty\": 3}", 400,
                        "presence_penalty", null, "[-2, 2]"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"stream_options\": {\"include_usage\": true}}",
                        400, "stream_options", null, "stream"),
                bad(chat, "{\"model\": \"llama3-gqa\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                        + " \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"n\","
                        + " \"schema\": {\"type\": \"integer\", \"multipleOf\": 3}}}}", 400, "response_format", null,
                        "'multipleOf' is not supported"),
                bad(chat, "{\"model\": \"llama3-gqa\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                        + " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get weather\"}}]}", 400,
                        "tools[0].function.name", null, "letters, digits", "get weather"),
                bad(c, "{\"model\": \"gpt-4\", \"prompt\": \"hi\"}", 404, "model", "model_not_found", "gpt-4"),
                bad(chat, "{\"model\": \"gpt-4\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
                        404, "model", "model_not_found", "gpt-4"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": [" + tooLong + "]}", 400, "prompt",
                        "context_length_exceeded", "600", "512"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": [1, 2, 3], \"max_tokens\": 510}", 400,
                        "prompt", "context_length_exceeded", "510", "512"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": [1, 99999]}", 400, "prompt", null, "99999"),
                bad(c, "{\"model\": \"llama3-gqa\", \"prompt\": [1, -2]}", 400, "prompt", null, ">= 0"));
    }

    static Arguments bad(String path, String body, int status, String param, String code, String... words) {
        return Arguments.of(path, body, status, param, code, words);
    }

    @ParameterizedTest(name = "[{index}] {0} {2} {3}")
    @MethodSource("badBodies")
    void badBodyGetsAClearError(String path, String body, int status, String param, String code, String[] words) {
        HttpResponse<String> r = harness.post(path, body);
        assertError(r, status, param, code, words);
    }

    @Test
    void longTextPromptNamesBothLengths() {
        String prompt = "word ".repeat(700);
        HttpResponse<String> r = harness.post("/v1/chat/completions", "{\"model\": \"llama3-gqa\", \"messages\": "
                + "[{\"role\": \"user\", \"content\": \"" + prompt + "\"}]}");
        JsonNode error = assertError(r, 400, "messages", "context_length_exceeded", "512");
        assertTrue(error.get("message").asText().matches(".*\\b\\d{3,4} tokens.*"), error.toString());
    }

    @Test
    void bodyOverTheLimitIs413() {
        String big = "{\"model\": \"llama3-gqa\", \"prompt\": \"" + "a".repeat((int) BODY_LIMIT) + "\"}";
        assertError(harness.post("/v1/completions", big), 413, null, "request_too_large", "65536");
        // Without a Content-Length (chunked), the limit holds as the body is read.
        HttpRequest chunked = HttpRequest.newBuilder(URI.create(harness.base + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(big.getBytes())))
                .build();
        assertError(harness.send(chunked), 413, null, "request_too_large", "65536");
    }

    @Test
    void unknownRouteIs404AndWrongMethodIs405() {
        assertError(harness.get("/v1/engines"), 404, null, "unknown_url", "/v1/engines");
        assertError(harness.post("/v2/completions", good()), 404, null, "unknown_url");
        HttpResponse<String> r = harness.get("/v1/completions");
        assertError(r, 405, null, "method_not_allowed", "POST");
        assertEquals("POST", r.headers().firstValue("Allow").orElse(null));
        assertError(harness.post("/v1/models", "{}"), 405, null, "method_not_allowed", "GET");
        assertError(harness.post("/health", "{}"), 405, null, "method_not_allowed");
    }

    @Test
    void apiKeyIsRequiredWhenSet() {
        String body = good();
        assertError(keyed.post("/v1/completions", body), 401, null, "invalid_api_key", "API key");
        assertError(keyed.post("/v1/completions", body, "Authorization", "Bearer sk-wrong"), 401, null,
                "invalid_api_key");
        assertError(keyed.post("/v1/completions", body, "Authorization", "Bearer " + KEY + "x"), 401, null,
                "invalid_api_key");
        assertError(keyed.get("/v1/models", "Authorization", "Basic " + KEY), 401, null, "invalid_api_key");
        HttpResponse<String> ok = keyed.post("/v1/completions", body, "Authorization", "Bearer " + KEY);
        assertEquals(200, ok.statusCode(), ok.body());
        assertEquals(goodText, ServerHarness.json(ok.body()).at("/choices/0/text").asText());
        assertEquals(200, keyed.get("/v1/models", "Authorization", "Bearer " + KEY).statusCode());
        // Liveness, readiness and metrics stay open to probes.
        assertEquals(200, keyed.get("/health").statusCode());
        assertEquals(200, keyed.get("/ready").statusCode());
        assertEquals(200, keyed.get("/metrics").statusCode());
    }

    @Test
    void errorsAreCountedByStatus() {
        harness.post("/v1/completions", "{\"model\": \"llama3-gqa\", \"prompt\": \"hi\", \"n\": 0}");
        String metrics = harness.get("/metrics").body();
        assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"), metrics);
        assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"), metrics);
    }

    static JsonNode assertError(HttpResponse<String> r, int status, String param, String code, String... words) {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), r.headers().toString());
        assertNotNull(r.headers().firstValue("x-request-id").orElse(null));
        JsonNode root = ServerHarness.json(r.body());
        assertEquals(1, root.size(), r.body());
        JsonNode error = root.get("error");
        assertNotNull(error, r.body());
        assertEquals(4, error.size(), r.body());
        assertTrue(error.get("message").isTextual() && !error.get("message").asText().isBlank(), r.body());
        assertTrue(error.get("type").isTextual(), r.body());
        assertEquals(param, error.get("param").isNull() ? null : error.get("param").asText(), r.body());
        if (code != null) {
            assertEquals(code, error.get("code").asText(), r.body());
        }
        for (String word : words) {
            assertTrue(error.get("message").asText().contains(word), "'" + word + "' missing in " + r.body()
                    + " " + Arrays.toString(words));
        }
        return error;
    }
}
