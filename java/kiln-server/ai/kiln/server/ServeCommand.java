package ai.kiln.server;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.hub.LocatedModel;
import ai.kiln.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code kiln serve}: the OpenAI-compatible HTTP server. It listens at once ({@code /health} 200,
 * {@code /ready} 503), loads the model, then serves. SIGTERM or SIGINT drains: {@code /ready} and
 * new requests answer 503, in-flight requests get the grace period to finish, and the process
 * exits 0.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions).")
public final class ServeCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(KilnServer.class);

    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME|URL", description = ModelOption.DESCRIPTION)
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1",
            description = "Address to bind (default: ${DEFAULT-VALUE}, loopback only; 0.0.0.0 for every interface).")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8000", description = "Port (default: ${DEFAULT-VALUE}; 0: any free port).")
    int port;

    @Option(names = "--served-model-name", paramLabel = "NAME",
            description = "The model name clients send (default: the model directory's name, or the Hub id).")
    String servedModelName;

    /** The environment variable that holds the API key where neither option gives one. */
    static final String API_KEY_ENV = "KILN_API_KEY";

    @Spec
    CommandSpec spec;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "Require 'Authorization: Bearer KEY' on /v1 routes. Other users see it in ps: prefer"
                    + " --api-key-file or $" + API_KEY_ENV + " (default: $" + API_KEY_ENV + ", else none).")
    String apiKey;

    @Option(names = "--api-key-file", paramLabel = "PATH",
            description = "Read the API key from this file (one line; a trailing newline is dropped).")
    Path apiKeyFile;

    @Option(names = "--max-waiting", paramLabel = "N",
            description = "Prompts admitted but not yet started beyond which new requests get 429; a request with more"
                    + " prompts than this gets 400 (default: 4 x --max-num-seqs, at least 256).")
    Integer maxWaiting;

    @Option(names = "--max-body-bytes", paramLabel = "BYTES", defaultValue = "8388608",
            description = "Largest request body; larger ones get 413 (default: ${DEFAULT-VALUE}).")
    long maxBodyBytes;

    @Option(names = "--grace-period-seconds", paramLabel = "SECONDS", defaultValue = "30",
            description = "On SIGTERM, how long in-flight requests may run before they are cancelled (default: ${DEFAULT-VALUE}).")
    long gracePeriodSeconds;

    @Option(names = "--heartbeat-seconds", paramLabel = "SECONDS", defaultValue = "10",
            description = "A quiet stream gets an SSE comment this often (default: ${DEFAULT-VALUE}).")
    double heartbeatSeconds;

    @Option(names = "--stream-buffer-bytes", paramLabel = "BYTES", defaultValue = "1048576",
            description = "Unsent bytes a stream may hold before its slow reader is cut off (default: ${DEFAULT-VALUE}).")
    long streamBufferBytes;

    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "2048",
            description = "Open connections at most; at the cap the one idle longest that is not being answered is"
                    + " closed, and new ones wait in the listen backlog (default: ${DEFAULT-VALUE}).")
    int maxConnections;

    @Option(names = "--idle-timeout-seconds", paramLabel = "SECONDS", defaultValue = "60",
            description = "A connection with nothing read or written for this long is closed (default: ${DEFAULT-VALUE}).")
    double idleTimeoutSeconds;

    @Option(names = "--header-timeout-seconds", paramLabel = "SECONDS", defaultValue = "10",
            description = "A request's line and headers must arrive within this, else its connection is closed"
                    + " (default: ${DEFAULT-VALUE}).")
    double headerTimeoutSeconds;

    @Option(names = "--body-timeout-seconds", paramLabel = "SECONDS", defaultValue = "60",
            description = "A request body must arrive within this, else 408 (default: ${DEFAULT-VALUE}).")
    double bodyTimeoutSeconds;

    @Option(names = "--min-body-rate", paramLabel = "BYTES_PER_SECOND", defaultValue = "1024",
            description = "After its first 2 s a body arriving slower than this on average gets 408; 0: no minimum"
                    + " (default: ${DEFAULT-VALUE}).")
    long minBodyRate;

    // NOTE: read before the command runs, by the application that owns the logging backend
    // (kiln-cli's Logback set-up); the server itself only logs through SLF4J.
    @Option(names = "--log-format", paramLabel = "FORMAT", defaultValue = "text", converter = LogFormat.Converter.class,
            description = "text: a line per event, for people; json: a JSON object per line (time, level, logger,"
                    + " message and a request's fields), for log collectors (default: ${DEFAULT-VALUE}).")
    LogFormat logFormat;

    @Mixin
    EngineFlags engineFlags;

    // NOTE: not among the EngineFlags: --seed of generate and bench seeds other things.
    @Option(names = "--seed", paramLabel = "SEED",
            description = "Seed for requests that bring none (default: drawn from entropy at start, so unseeded requests differ run to run).")
    Long seed;

    @Option(names = "--tool-call-parser", paramLabel = "FORMAT",
            description = "How the model writes tool calls: hermes, llama3_json or mistral (default: the format its chat template names, else hermes).")
    String toolCallParser;

    @Override
    public Integer call() throws Exception {
        KilnServer.Options options = new KilnServer.Options(host, port, servedModelName, apiKey(System.getenv()),
                maxWaiting, maxBodyBytes,
                Duration.ofSeconds(gracePeriodSeconds), Duration.ofMillis((long) (heartbeatSeconds * 1000)),
                streamBufferBytes, new KilnServer.ConnectionLimits(maxConnections, seconds(idleTimeoutSeconds),
                        seconds(headerTimeoutSeconds), seconds(bodyTimeoutSeconds), minBodyRate), toolCallParser);
        EngineOptions engineOptions = engineFlags.engineOptions(settings -> settings.seed(seed)
                // The server drains first; what is left by the time the engine closes is cancelled.
                .shutdownGrace(Duration.ofSeconds(1)));
        KilnServer server = new KilnServer(options).start();
        AtomicReference<Engine> engine = new AtomicReference<>();
        Thread drainHook = new Thread(() -> shutdown(server, engine, options.gracePeriod()), "kiln-serve-drain");
        Runtime.getRuntime().addShutdownHook(drainHook);
        try {
            // NOTE: located while the server already answers /health, since a Hub model may download first.
            LocatedModel located = ModelOption.locate(spec, model, revision);
            engine.set(Engine.create(located.directory(), engineOptions));
            serve(server, engine.get(), located);
        } catch (Exception | Error e) {
            Runtime.getRuntime().removeShutdownHook(drainHook);
            server.close();
            Engine loaded = engine.get();
            if (loaded != null) {
                loaded.close();
            }
            throw e;
        }
        server.awaitStopped();
        return 0;
    }

    /**
     * Serves {@code engine}, loaded from {@code model}, on {@code server}: with the model's tokenizer
     * where it has a tokenizer.json, under the model's name (its directory's, or the Hub id) unless
     * the server was given one. {@code kiln serve} and {@code kiln bench serve}'s in-process server
     * both serve so.
     */
    public static void serve(KilnServer server, Engine engine, LocatedModel model) throws IOException {
        Path dir = model.directory();
        Tokenizer tokenizer = Files.isRegularFile(dir.resolve("tokenizer.json")) ? Tokenizer.load(dir) : null;
        server.serve(engine, tokenizer, model.name());
    }

    /**
     * The API key from {@code --api-key}, {@code --api-key-file} or {@code env}'s KILN_API_KEY, in
     * that order; null for none. NOTE: a key given but empty is refused rather than read as "no
     * key": a mistyped variable or an empty file would otherwise serve without authentication.
     */
    String apiKey(Map<String, String> env) {
        if (apiKey != null && apiKeyFile != null) {
            throw usage("--api-key and --api-key-file both give the key; use one");
        }
        if (apiKey != null) {
            return checkedKey(apiKey, "--api-key");
        }
        if (apiKeyFile != null) {
            return checkedKey(readKeyFile(apiKeyFile), "--api-key-file " + apiKeyFile);
        }
        String fromEnv = env.get(API_KEY_ENV);
        return fromEnv == null ? null : checkedKey(fromEnv, "$" + API_KEY_ENV);
    }

    private String readKeyFile(Path file) {
        if (Files.isDirectory(file)) {
            throw usage("--api-key-file: " + file + " is a directory, not a file holding the key");
        }
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw usage("--api-key-file: " + file + " does not exist");
        } catch (AccessDeniedException e) {
            throw usage("--api-key-file: " + file + " cannot be read (permission denied)");
        } catch (CharacterCodingException e) {
            throw usage("--api-key-file: " + file + " is not UTF-8 text");
        } catch (IOException e) {
            throw usage("--api-key-file: " + file + " cannot be read: " + e.getMessage());
        }
        // Editors end a file with a newline; it is not part of the key.
        if (text.endsWith("\r\n")) {
            text = text.substring(0, text.length() - 2);
        } else if (text.endsWith("\n")) {
            text = text.substring(0, text.length() - 1);
        }
        if (text.indexOf('\n') >= 0 || text.indexOf('\r') >= 0) {
            throw usage("--api-key-file: " + file + " must hold the key on one line");
        }
        return text;
    }

    /** A key that a client can send: not empty, and with no whitespace at its ends (the header is trimmed). */
    private String checkedKey(String key, String source) {
        if (key.isBlank()) {
            throw usage(source + ": the API key is empty; give a key, or no key to serve without authentication"
                    + (source.startsWith("$") ? " (unset the variable)" : ""));
        }
        if (!key.strip().equals(key)) {
            throw usage(source + ": the API key starts or ends with whitespace, which an Authorization header"
                    + " cannot carry");
        }
        return key;
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    /**
     * The JVM shutdown hook (SIGTERM, SIGINT): drain, stop listening, close the engine, exit 0.
     * NOTE: the JVM would report a signal death (143) after the hooks; a completed drain is a
     * clean exit, so the hook ends the process itself with status 0.
     */
    private static void shutdown(KilnServer server, AtomicReference<Engine> engine, Duration grace) {
        try {
            server.drain(grace);
            server.close();
            Engine e = engine.get();
            if (e != null) {
                e.close();
            }
            LOG.info("stopped");
        } catch (Exception e) {
            LOG.error("shutdown failed: " + e, e);
            Runtime.getRuntime().halt(1);
        }
        Runtime.getRuntime().halt(0);
    }

    private static Duration seconds(double seconds) {
        return Duration.ofNanos((long) (seconds * 1e9));
    }
}
