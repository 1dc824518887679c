package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The routing table through the server's life: while the model loads only the probes and the
 * (empty) model list answer, once served every route does, and a drain turns readiness and the
 * generation routes to 503 again; refusals are counted by the state that refused them.
 */
class RoutingTest {

    static final String COMPLETION = "{\"model\": \"llama3-gqa\", \"prompt\": \"Hi\", \"max_tokens\": 2, \"temperature\": 0}";
    static final String CHAT = "{\"model\": \"llama3-gqa\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
            + " \"max_tokens\": 2, \"temperature\": 0}";

    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @Test
    void routesAnswerByTheServersState() throws Exception {
        KilnServer server = new KilnServer(ServerHarness.serverOptions(), new PrintStream(new ByteArrayOutputStream()))
                .start();
        String base = "http://127.0.0.1:" + server.port();
        try (Engine engine = Engine.create(ServerHarness.FIXTURE.dir(), ServerHarness.engineOptions().build())) {
            try {
                // Loading: alive, not ready, no model listed, generation refused.
                assertEquals(200, get(base + "/health").statusCode());
                BadInputTest.assertError(get(base + "/ready"), 503, null, "loading", "loading");
                assertEquals(0, ServerHarness.json(get(base + "/v1/models").body()).get("data").size());
                BadInputTest.assertError(get(base + "/v1/models/llama3-gqa"), 404, "model", "model_not_found",
                        "'llama3-gqa'", "'null'");
                BadInputTest.assertError(post(base + "/v1/completions", COMPLETION), 503, null, "loading");
                BadInputTest.assertError(post(base + "/v1/chat/completions", CHAT), 503, null, "loading");
                assertTrue(get(base + "/metrics").body().contains("kiln_requests_rejected_total{reason=\"loading\"} 2.0"));

                // Ready: every route answers.
                server.serve(engine, Tokenizer.load(ServerHarness.FIXTURE.dir()), ServerHarness.MODEL);
                JsonNode ready = ServerHarness.json(get(base + "/ready").body());
                assertEquals("ready", ready.get("status").asText());
                assertEquals(ServerHarness.MODEL, ready.get("model").asText());
                JsonNode card = ServerHarness.json(get(base + "/v1/models/llama3-gqa").body());
                assertEquals(ServerHarness.json(get(base + "/v1/models").body()).at("/data/0"), card);
                assertEquals("model", card.get("object").asText());
                assertEquals(engine.maxModelLen(), card.get("max_model_len").asInt());
                BadInputTest.assertError(get(base + "/v1/models/other"), 404, "model", "model_not_found",
                        "'other'", "'llama3-gqa'");
                HttpResponse<String> head = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models"))
                        .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(200, head.statusCode());
                assertEquals("", head.body());
                assertEquals(200, post(base + "/v1/completions", COMPLETION).statusCode());
                assertEquals(200, post(base + "/v1/chat/completions", CHAT).statusCode());
                BadInputTest.assertError(post(base + "/v1/models/llama3-gqa", "{}"), 405, null, "method_not_allowed",
                        "GET");

                // Draining: not ready, generation refused, the rest still answers.
                assertTrue(server.drain(Duration.ofSeconds(5)));
                BadInputTest.assertError(get(base + "/ready"), 503, null, "draining", "shutting down");
                BadInputTest.assertError(post(base + "/v1/completions", COMPLETION), 503, null, "draining");
                assertEquals(200, get(base + "/health").statusCode());
                assertEquals(200, get(base + "/v1/models/llama3-gqa").statusCode());
                String metrics = get(base + "/metrics").body();
                assertTrue(metrics.contains("kiln_requests_rejected_total{reason=\"draining\"} 1.0"), metrics);
                assertTrue(metrics.contains("kiln_http_requests_total{endpoint=\"/v1/models/{id}\",status=\"200\"} 2.0"),
                        metrics);
            } finally {
                server.close();
            }
        }
    }

    private HttpResponse<String> get(String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String url, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
