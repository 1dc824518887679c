package ai.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** A streamed response read to its end: the status, the data events in order and the SSE comment lines. */
record SseClient(int status, List<JsonNode> events, boolean done, int comments, String errorBody) {

    static SseClient post(HttpClient http, String url, String body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<Stream<String>> response = http.send(request, HttpResponse.BodyHandlers.ofLines());
        List<JsonNode> events = new ArrayList<>();
        boolean done = false;
        int comments = 0;
        StringBuilder other = new StringBuilder();
        try (Stream<String> lines = response.body()) {
            for (String line : (Iterable<String>) lines::iterator) {
                if (line.startsWith("data: ")) {
                    String data = line.substring(6);
                    if (data.equals("[DONE]")) {
                        if (done) {
                            throw new AssertionError("[DONE] twice");
                        }
                        done = true;
                    } else {
                        if (done) {
                            throw new AssertionError("an event after [DONE]: " + data);
                        }
                        events.add(ServerHarness.json(data));
                    }
                } else if (line.startsWith(":")) {
                    comments++;
                } else if (!line.isEmpty()) {
                    other.append(line);
                }
            }
        }
        return new SseClient(response.statusCode(), events, done, comments, other.toString());
    }
}
