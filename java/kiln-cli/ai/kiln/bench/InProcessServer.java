package ai.kiln.bench;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.hub.LocatedModel;
import ai.kiln.server.KilnServer;
import ai.kiln.server.ServeCommand;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;

/**
 * {@code kiln serve}'s server and engine, started in this process for {@code kiln bench serve}
 * over a model directory, on a free loopback port, and stopped when the benchmark is done. The
 * benchmark then drives it over HTTP exactly as it drives a server in another process.
 */
final class InProcessServer implements AutoCloseable {

    private final Engine engine;
    private final KilnServer server;

    private InProcessServer(Engine engine, KilnServer server) {
        this.engine = engine;
        this.server = server;
    }

    /**
     * Loads the model and serves it.
     *
     * @param servedModelName the name requests use; null: the model's name (its directory's, or the Hub id), as kiln serve's
     * @param maxWaiting      prompts admitted before new requests get 429
     * @param logRequests     the server's log (a line per request) through the application's log;
     *                        false: none, since the benchmark reports every failure itself
     */
    static InProcessServer start(LocatedModel model, EngineOptions engineOptions, String servedModelName, int maxWaiting,
            boolean logRequests) throws Exception {
        KilnServer.Options options = KilnServer.Options.defaults().withPort(0).withMaxWaiting(maxWaiting)
                .withServedModelName(servedModelName);
        Engine engine = Engine.create(model.directory(), engineOptions);
        KilnServer server = null;
        try {
            server = logRequests ? new KilnServer(options)
                    : new KilnServer(options, new PrintStream(OutputStream.nullOutputStream()));
            server.start();
            ServeCommand.serve(server, engine, model);
            return new InProcessServer(engine, server);
        } catch (Exception | Error e) {
            try {
                if (server != null) {
                    server.close();
                }
            } finally {
                engine.close();
            }
            throw e;
        }
    }

    /** The server's root URL, on loopback. */
    URI baseUrl() {
        return URI.create("http://127.0.0.1:" + server.port());
    }

    String modelName() {
        return server.modelName();
    }

    String deviceDescription() {
        return engine.deviceDescription();
    }

    /** Stops listening, then closes the engine. */
    @Override
    public void close() throws Exception {
        try {
            server.close();
        } finally {
            engine.close();
        }
    }
}
