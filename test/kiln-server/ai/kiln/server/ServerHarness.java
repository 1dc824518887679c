package ai.kiln.server;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * A live server on an ephemeral loopback port over the real engine with the llama3-gqa fixture
 * (CPU backend), and a plain HTTP client for it.
 */
final class ServerHarness implements AutoCloseable {

    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");
    static final String MODEL = "llama3-gqa";
    static final ObjectMapper JSON = new ObjectMapper();

    final Engine engine;
    final Tokenizer tokenizer;
    final KilnServer server;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    final String base;

    private ServerHarness(Engine engine, Tokenizer tokenizer, KilnServer server) {
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.server = server;
        this.base = "http://127.0.0.1:" + server.port();
    }

    static EngineOptions.Builder engineOptions() {
        return EngineOptions.builder().device("cpu").kvCacheBytes(16L << 20).maxRunningSeqs(128)
                .shutdownGrace(Duration.ofSeconds(2));
    }

    static KilnServer.Options serverOptions() {
        return KilnServer.Options.defaults().withPort(0);
    }

    static ServerHarness start() {
        return start(serverOptions(), engineOptions().build());
    }

    static ServerHarness start(KilnServer.Options options, EngineOptions engineOptions) {
        return start(options, engineOptions, true);
    }

    /** A server over the fixture with its tokenizer, or (withTokenizer false) over token ids alone. */
    static ServerHarness start(KilnServer.Options options, EngineOptions engineOptions, boolean withTokenizer) {
        return start(FIXTURE.dir(), options, engineOptions, withTokenizer);
    }

    /** A server over the model in {@code modelDir} (a copy of the fixture with files changed), named as the fixture. */
    static ServerHarness start(java.nio.file.Path modelDir, KilnServer.Options options, EngineOptions engineOptions,
            boolean withTokenizer) {
        Engine engine = withTokenizer ? Engine.create(modelDir, engineOptions)
                : Engine.create(modelDir, null, engineOptions);
        try {
            Tokenizer tokenizer = withTokenizer ? Tokenizer.load(modelDir) : null;
            KilnServer server = new KilnServer(options).start();
            server.serve(engine, tokenizer, MODEL);
            return new ServerHarness(engine, tokenizer, server);
        } catch (Exception e) {
            engine.close();
            throw new IllegalStateException("could not start the server: " + e, e);
        }
    }

    HttpResponse<String> post(String path, String body, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json");
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return send(b.build());
    }

    HttpResponse<String> get(String path, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60)).GET();
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return send(b.build());
    }

    HttpResponse<String> send(HttpRequest request) {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static JsonNode json(String text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new UncheckedIOException("not JSON: " + text, e);
        }
    }

    /** Polls until the engine holds no KV blocks and runs nothing, at most {@code timeout}; true if it got there. */
    boolean awaitEngineIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            var m = engine.metrics();
            if (m.kvCacheUsage() == 0 && m.numRunning() == 0 && m.numWaiting() == 0) {
                return true;
            }
            Thread.sleep(20);
        }
        return false;
    }

    @Override
    public void close() throws Exception {
        try {
            server.close();
        } finally {
            engine.close();
        }
    }
}
