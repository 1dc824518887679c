package ai.kiln.server;

import ai.kiln.api.Engine;
import ai.kiln.tokenizer.Tokenizer;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.ConnectionLimit;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * Kiln's OpenAI-compatible HTTP server over Jetty. It listens from {@link #start()} on (answering
 * {@code /health}, and 503 on {@code /ready} and the generation routes while the model loads),
 * serves an engine from {@link #serve(Engine, Tokenizer, String)} on, and on {@link #drain(Duration)} turns
 * {@code /ready} and new generation requests to 503 while in-flight requests finish.
 *
 * <p>This type holds Jetty's set-up, the guard against slow and idle connections, the server's
 * life (loading, ready, draining, stopped) and the routing table: what every request goes through
 * (request id, transfer coding, API key, path and method, metrics and log) before its route
 * ({@link CompletionsRoute}, {@link ChatCompletionsRoute}, {@link ModelsRoute}, {@link HealthRoutes},
 * {@link MetricsRoute}) answers it.
 */
public final class KilnServer implements AutoCloseable {

    /** The largest --max-body-bytes: a body is read into one array. */
    static final long MAX_BODY_BYTES = Integer.MAX_VALUE - 8;

    /** Connections the kernel may hold for accepting (the listen backlog). */
    static final int ACCEPT_QUEUE = 4096;

    /**
     * What {@code kiln serve} configures.
     *
     * @param host              address to bind; loopback unless told otherwise
     * @param port              port to bind; 0: an ephemeral one
     * @param servedModelName   the model name clients use; null: the model directory's name
     * @param apiKey            when set, every /v1 request must carry {@code Authorization: Bearer <key>}
     * @param maxWaiting        generation requests admitted but not yet started, beyond which new ones get 429;
     *                          null: {@link #defaultMaxWaiting} of the engine served (so that a burst the
     *                          engine can batch at once is never refused)
     * @param maxBodyBytes      the largest request body; larger ones get 413
     * @param gracePeriod       how long a drain waits for in-flight requests before cancelling them
     * @param heartbeat         a quiet stream gets an SSE comment this often (it reveals a gone client)
     * @param maxStreamBufferBytes a stream whose unsent bytes exceed this (a slow reader) is cancelled
     * @param connections       how slow and idle clients are kept from holding connections
     * @param toolCallParser    how the model writes tool calls (hermes, llama3_json, mistral), or null:
     *                          the format its chat template names
     */
    public record Options(String host, int port, String servedModelName, String apiKey, Integer maxWaiting,
            long maxBodyBytes, Duration gracePeriod, Duration heartbeat, long maxStreamBufferBytes,
            ConnectionLimits connections, String toolCallParser) {

        /** The options with the tool-call format the model's chat template writes. */
        public Options(String host, int port, String servedModelName, String apiKey, Integer maxWaiting,
                long maxBodyBytes, Duration gracePeriod, Duration heartbeat, long maxStreamBufferBytes,
                ConnectionLimits connections) {
            this(host, port, servedModelName, apiKey, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, connections, null);
        }

        /** The options with the default {@link ConnectionLimits}. */
        public Options(String host, int port, String servedModelName, String apiKey, Integer maxWaiting,
                long maxBodyBytes, Duration gracePeriod, Duration heartbeat, long maxStreamBufferBytes) {
            this(host, port, servedModelName, apiKey, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, ConnectionLimits.defaults());
        }

        public Options {
            Objects.requireNonNull(host, "host");
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
            }
            if (apiKey != null && apiKey.isEmpty()) {
                throw new IllegalArgumentException("the API key must not be empty");
            }
            if (maxWaiting != null && maxWaiting < 1) {
                throw new IllegalArgumentException("max-waiting must be >= 1 (0 would refuse every request), got "
                        + maxWaiting);
            }
            // NOTE: a body is held in one Java array, hence the upper bound.
            if (maxBodyBytes < 1 || maxBodyBytes > MAX_BODY_BYTES) {
                throw new IllegalArgumentException("max-body-bytes must be in [1, " + MAX_BODY_BYTES + "], got "
                        + maxBodyBytes);
            }
            if (gracePeriod.isNegative()) {
                throw new IllegalArgumentException("the grace period must be >= 0, got " + gracePeriod);
            }
            if (heartbeat.isNegative() || heartbeat.isZero()) {
                throw new IllegalArgumentException("the heartbeat interval must be > 0, got " + heartbeat);
            }
            if (maxStreamBufferBytes < 1024) {
                throw new IllegalArgumentException("the stream buffer must be >= 1024 bytes, got " + maxStreamBufferBytes);
            }
            Objects.requireNonNull(connections, "connections");
            if (toolCallParser != null) {
                ToolCallFormat.ofFlag(toolCallParser);
            }
        }

        /**
         * Loopback, port 8000, waiting bounded by the engine's batch ({@link #defaultMaxWaiting}), 8 MiB
         * bodies, 30 s grace, 10 s heartbeats, 1 MiB stream buffers.
         */
        public static Options defaults() {
            return new Options("127.0.0.1", 8000, null, null, null, 8L << 20, Duration.ofSeconds(30),
                    Duration.ofSeconds(10), 1L << 20);
        }

        public Options withPort(int port) {
            return new Options(host, port, servedModelName, apiKey, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, connections, toolCallParser);
        }

        public Options withApiKey(String key) {
            return new Options(host, port, servedModelName, key, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, connections, toolCallParser);
        }

        public Options withMaxWaiting(Integer waiting) {
            return new Options(host, port, servedModelName, apiKey, waiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, connections, toolCallParser);
        }

        public Options withServedModelName(String name) {
            return new Options(host, port, name, apiKey, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, connections, toolCallParser);
        }

        public Options withLimits(long bodyBytes, Duration heartbeatEvery, long streamBufferBytes) {
            return new Options(host, port, servedModelName, apiKey, maxWaiting, bodyBytes, gracePeriod, heartbeatEvery,
                    streamBufferBytes, connections, toolCallParser);
        }

        public Options withConnectionLimits(ConnectionLimits limits) {
            return new Options(host, port, servedModelName, apiKey, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, limits, toolCallParser);
        }

        /** With the tool-call format named as vLLM's --tool-call-parser names it (null: from the chat template). */
        public Options withToolCallParser(String parser) {
            return new Options(host, port, servedModelName, apiKey, maxWaiting, maxBodyBytes, gracePeriod, heartbeat,
                    maxStreamBufferBytes, connections, parser);
        }

        public Options withGracePeriod(Duration grace) {
            return new Options(host, port, servedModelName, apiKey, maxWaiting, maxBodyBytes, grace, heartbeat,
                    maxStreamBufferBytes, connections, toolCallParser);
        }
    }

    /**
     * How the server keeps slow and idle clients from holding its connections (none of them holds a
     * thread: bodies are read as they arrive).
     *
     * @param maxConnections   open connections at most; at the cap the one idle longest among those
     *                         not being answered is closed, and new ones wait in the listen backlog
     * @param idleTimeout      a connection with nothing read or written for this long is closed
     *                         (not one whose answer is being generated)
     * @param headerTimeout    a request's line and headers must arrive within this, else the connection is closed
     * @param bodyTimeout      a request body must arrive within this, else 408 and the connection is closed
     * @param minBodyBytesPerSecond after {@link #RATE_GRACE}, a body arriving slower than this on
     *                         average gets 408 and its connection is closed; 0: no minimum
     */
    public record ConnectionLimits(int maxConnections, Duration idleTimeout, Duration headerTimeout,
            Duration bodyTimeout, long minBodyBytesPerSecond, long bodyBufferBytes) {

        /** How long a body may arrive before its rate is held to the minimum. */
        public static final Duration RATE_GRACE = Duration.ofSeconds(2);
        /** What all bodies still arriving may hold together by default (at least one largest body always fits). */
        public static final long DEFAULT_BODY_BUFFER_BYTES = 1L << 30;

        /** The limits with the default body buffer budget. */
        public ConnectionLimits(int maxConnections, Duration idleTimeout, Duration headerTimeout, Duration bodyTimeout,
                long minBodyBytesPerSecond) {
            this(maxConnections, idleTimeout, headerTimeout, bodyTimeout, minBodyBytesPerSecond,
                    DEFAULT_BODY_BUFFER_BYTES);
        }

        public ConnectionLimits {
            if (bodyBufferBytes < 1) {
                throw new IllegalArgumentException("the body buffer budget must be >= 1 byte, got " + bodyBufferBytes);
            }
            if (maxConnections < 2) {
                throw new IllegalArgumentException("max-connections must be >= 2, got " + maxConnections);
            }
            for (Duration d : new Duration[] {idleTimeout, headerTimeout, bodyTimeout}) {
                if (d.isNegative() || d.isZero()) {
                    throw new IllegalArgumentException("connection timeouts must be > 0, got " + d);
                }
            }
            if (minBodyBytesPerSecond < 0) {
                throw new IllegalArgumentException("the minimum body rate must be >= 0, got " + minBodyBytesPerSecond);
            }
        }

        /** 2048 connections, 60 s idle, 10 s for headers, 60 s for a body, at least 1024 bytes/s after 2 s. */
        public static ConnectionLimits defaults() {
            return new ConnectionLimits(2048, Duration.ofSeconds(60), Duration.ofSeconds(10), Duration.ofSeconds(60),
                    1024);
        }
    }

    /** Where the server is in its life. */
    public enum State { LOADING, READY, DRAINING, STOPPED }

    private static final Pattern CLIENT_REQUEST_ID = Pattern.compile("[A-Za-z0-9._:-]{1,128}");

    /** A path's route and the one method it answers (HEAD as well where that is GET). */
    private record RouteEntry(String method, Route route) {
    }

    private final Options options;
    private final Server jetty;
    private final ServerConnector connector;
    final ServerMetrics metrics = new ServerMetrics();
    private final RequestLog log;
    private final byte[] apiKeyBytes;
    private final ScheduledExecutorService heartbeats;
    private final ConnectionGuard guard;
    private final BodyReader bodies;
    private final SseStreams streams;
    /** The routing table: exact paths, and the model cards under {@link ModelsRoute#CARD_PREFIX}. */
    private final Map<String, RouteEntry> routes;
    private final RouteEntry modelCard;
    private final CountDownLatch stopped = new CountDownLatch(1);

    /**
     * NOTE: changed only by compare-and-set, so that a drain begun while the model loads (SIGTERM
     * during a download) is not undone by the load finishing: once draining, never ready again.
     */
    private final AtomicReference<State> state = new AtomicReference<>(State.LOADING);
    private volatile ServedModel served;
    private volatile String modelName;

    /** A server that logs through SLF4J: its events as ai.kiln.server.KilnServer, requests as ai.kiln.server.access. */
    public KilnServer(Options options) {
        this(options, new RequestLog());
    }

    /** A server that writes its log lines as text to {@code logTo}, not through SLF4J. */
    public KilnServer(Options options, PrintStream logTo) {
        this(options, new RequestLog(logTo));
    }

    private KilnServer(Options options, RequestLog log) {
        this.options = options;
        this.log = log;
        this.apiKeyBytes = options.apiKey() == null ? null : options.apiKey().getBytes(StandardCharsets.UTF_8);
        this.modelName = options.servedModelName();
        QueuedThreadPool threads = new QueuedThreadPool(256, 8);
        threads.setName("kiln-http");
        threads.setDaemon(true);
        jetty = new Server(threads);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setSendDateHeader(true);
        connector = new ServerConnector(jetty, new HttpConnectionFactory(http));
        connector.setHost(options.host());
        connector.setPort(options.port());
        connector.setIdleTimeout(options.connections().idleTimeout().toMillis());
        // NOTE: Jetty's default leaves the listen backlog at the JVM's 50, which a burst of
        // clients connecting at once (a balancer's retry storm, a benchmark) overflows. The kernel
        // caps this at net.core.somaxconn.
        connector.setAcceptQueueSize(ACCEPT_QUEUE);
        jetty.addConnector(connector);
        // NOTE: Jetty's ConnectionLimit stops accepting at the cap (new clients wait in the
        // backlog); the guard then closes the idlest connection to make room.
        jetty.addBean(new ConnectionLimit(options.connections().maxConnections(), connector));
        guard = new ConnectionGuard(connector, options.connections());
        connector.addEventListener(guard);
        bodies = new BodyReader(options.maxBodyBytes(), options.connections(), guard,
                Math.max(options.connections().bodyBufferBytes(), options.maxBodyBytes()));
        streams = new SseStreams(options.maxStreamBufferBytes());
        HealthRoutes health = new HealthRoutes(this);
        ModelsRoute models = new ModelsRoute(this);
        routes = Map.of(
                CompletionsRoute.PATH, new RouteEntry("POST",
                        new GenerationGate(this, bodies, metrics, new CompletionsRoute(streams))),
                ChatCompletionsRoute.PATH, new RouteEntry("POST",
                        new GenerationGate(this, bodies, metrics, new ChatCompletionsRoute(streams))),
                ModelsRoute.LIST_PATH, new RouteEntry("GET", models),
                "/health", new RouteEntry("GET", health.health()),
                "/ready", new RouteEntry("GET", health.ready()),
                "/metrics", new RouteEntry("GET", new MetricsRoute(metrics)));
        modelCard = new RouteEntry("GET", models);
        jetty.setHandler(new ApiHandler());
        jetty.setErrorHandler(new JsonErrorHandler());
        jetty.setStopTimeout(2000);
        heartbeats = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "kiln-sse-heartbeat");
            t.setDaemon(true);
            return t;
        });
    }

    /** Binds and starts answering; generation routes answer 503 until {@link #serve}. */
    public KilnServer start() throws Exception {
        jetty.start();
        guard.start();
        long every = options.heartbeat().toMillis();
        heartbeats.scheduleWithFixedDelay(() -> streams.heartbeat(options.heartbeat().toNanos()),
                every, Math.max(1, every / 2), TimeUnit.MILLISECONDS);
        log.info("listening on http://" + options.host() + ":" + port());
        return this;
    }

    /**
     * The waiting bound where none is given: 4 x the sequences the engine runs at once, at least 256
     * (1,024 on the CPU's 256; 4,096 on a large GPU's 1,024), so that a burst the engine can batch
     * at once, and a few batches' worth queued behind it, is taken rather than answered 429.
     */
    static int defaultMaxWaiting(Engine engine) {
        Integer running = engine.options().maxRunningSeqs();
        return running == null ? 256 : Math.max(256, (int) Math.min(Integer.MAX_VALUE, 4L * running));
    }

    /**
     * Serves {@code engine} under {@code defaultModelName} (unless a served model name was given):
     * /ready turns 200. The tokenizer (null if the model has none) spells out tokens for
     * log-probabilities and echoed token-id prompts.
     */
    public void serve(Engine engine, Tokenizer tokenizer, String defaultModelName) {
        if (modelName == null) {
            modelName = defaultModelName;
        }
        TokenTexts texts = new TokenTexts(tokenizer);
        int maxWaiting = options.maxWaiting() != null ? options.maxWaiting() : defaultMaxWaiting(engine);
        // NOTE: the format is the flag's, else the one the model's chat template writes.
        ToolCallFormat toolCalls = options.toolCallParser() != null ? ToolCallFormat.ofFlag(options.toolCallParser())
                : ToolCallFormat.ofTemplate(tokenizer == null ? null : tokenizer.chatTemplateText());
        ServedModel model = new ServedModel(modelName, engine, new GenerationCalls(engine, maxWaiting, metrics),
                new LogprobsJson(texts), texts, toolCalls);
        metrics.engineGauges(modelName, engine::metrics);
        served = model;
        state.compareAndSet(State.LOADING, State.READY);
        log.info("serving model '" + modelName + "'");
    }

    /**
     * Sets SO_SNDBUF of connections accepted from now on (the kernel's share of a slow reader's
     * backlog); by default the kernel sizes it. For tests of slow readers.
     */
    void socketSendBufferBytes(int bytes) {
        connector.setAcceptedSendBufferSize(bytes);
    }

    public int port() {
        return connector.getLocalPort();
    }

    public State state() {
        return state.get();
    }

    public String modelName() {
        return modelName;
    }

    /** The model being served; null until {@link #serve}. */
    ServedModel served() {
        return served;
    }

    /**
     * Stops taking generation requests (503, and /ready 503), waits up to {@code grace} for the
     * in-flight ones to finish, then cancels what is left. Returns whether all finished in time.
     */
    public boolean drain(Duration grace) throws InterruptedException {
        if (state.updateAndGet(now -> now == State.STOPPED ? now : State.DRAINING) == State.STOPPED) {
            return true;
        }
        ServedModel model = served;
        if (model == null) {
            return true;
        }
        GenerationCalls generation = model.calls();
        log.info("draining: " + generation.inFlight() + " requests in flight, grace period " + grace.toSeconds() + "s");
        boolean finished = generation.awaitIdle(grace);
        if (!finished) {
            log.info("grace period over: cancelling " + generation.inFlight() + " requests");
            generation.cancelAll();
            generation.awaitIdle(Duration.ofSeconds(5));
        }
        return finished;
    }

    /** Stops listening; streams still open are cut. Does not close the engine. */
    @Override
    public void close() throws Exception {
        state.set(State.STOPPED);
        heartbeats.shutdownNow();
        guard.stop();
        try {
            jetty.stop();
        } finally {
            stopped.countDown();
        }
    }

    /** Blocks until {@link #close()}. */
    public void awaitStopped() throws InterruptedException {
        stopped.await();
    }

    private boolean authorized(Request request) {
        if (apiKeyBytes == null) {
            return true;
        }
        String header = request.getHeaders().get(HttpHeader.AUTHORIZATION);
        byte[] given = new byte[0];
        if (header != null && header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            given = header.substring(7).trim().getBytes(StandardCharsets.UTF_8);
        }
        // NOTE: MessageDigest.isEqual takes time independent of where the bytes differ.
        return MessageDigest.isEqual(given, apiKeyBytes);
    }

    private final class ApiHandler extends Handler.Abstract {

        @Override
        public boolean handle(Request request, Response response, Callback callback) {
            String given = request.getHeaders().get("x-request-id");
            String requestId = given != null && CLIENT_REQUEST_ID.matcher(given).matches() ? given
                    : UUID.randomUUID().toString().replace("-", "");
            response.getHeaders().put("x-request-id", requestId);
            Exchange exchange = new Exchange(request, response, callback, requestId, log);
            String method = request.getMethod();
            String path = Request.getPathInContext(request);
            String endpoint = endpointLabel(path);
            Request.addCompletionListener(request, failure -> {
                int status = failure == null ? response.getStatus() : (response.isCommitted() ? response.getStatus() : 500);
                metrics.requests.labelValues(endpoint, Integer.toString(status)).inc();
                log.request(exchange, method, path, status, failure);
            });
            exchange.answering(() -> {
                checkTransferCoding(request);
                route(exchange, method, path).answer(exchange);
            });
            return true;
        }

        /**
         * The metrics' name for the route of {@code path}: its path, the model cards' template, or
         * "other"; never a client's own text, so that the labels stay few.
         */
        private String endpointLabel(String path) {
            if (routes.containsKey(path)) {
                return path;
            }
            return path.startsWith(ModelsRoute.CARD_PREFIX) ? ModelsRoute.CARD_ROUTE : "other";
        }

        /** The route answering {@code method} on {@code path}; throws the 4xx/501 for a request no route takes. */
        private Route route(Exchange exchange, String method, String path) {
            if (method.equals("CONNECT")) {
                throw ApiError.notImplemented("CONNECT is not supported: this server is not a proxy.",
                        "unsupported_method");
            }
            // NOTE: before any routing answer, so that without the key a 404 or 405 tells nothing of the routes.
            if ((path.equals("/v1") || path.startsWith("/v1/")) && !authorized(exchange.request)) {
                exchange.response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer");
                throw ApiError.unauthorized();
            }
            RouteEntry entry = routes.get(path);
            if (entry == null) {
                if (path.startsWith(ModelsRoute.CARD_PREFIX)) {
                    entry = modelCard;
                } else {
                    throw ApiError.unknownRoute(method, path);
                }
            }
            String allowed = entry.method();
            if (!allowed.equals(method) && !(method.equals("HEAD") && allowed.equals("GET"))) {
                exchange.response.getHeaders().put(HttpHeader.ALLOW, allowed);
                throw ApiError.methodNotAllowed(method, path, allowed);
            }
            return entry.route();
        }

        /**
         * Jetty frames a body by its last coding, chunked, and applies no other: a body sent as
         * {@code gzip, chunked} would be read as if it were not compressed. RFC 9112 section 6.1:
         * a coding the server does not implement gets 501.
         */
        private static void checkTransferCoding(Request request) {
            List<String> codings = request.getHeaders().getCSV(HttpHeader.TRANSFER_ENCODING, false);
            for (String coding : codings) {
                if (!coding.equalsIgnoreCase("chunked")) {
                    throw ApiError.notImplemented("Transfer-Encoding '" + String.join(", ", codings)
                            + "' is not supported; send the body as is or with 'chunked' alone.",
                            "unsupported_transfer_encoding");
                }
            }
        }
    }

    /** Jetty's own errors (a malformed request line, a failure in a handler) as OpenAI-style JSON. */
    private static final class JsonErrorHandler extends ErrorHandler {

        /** Jetty writes a body only for GET, POST and HEAD; a CONNECT or PRI would get an empty one. */
        @Override
        public boolean errorPageForMethod(String method) {
            return true;
        }

        @Override
        protected void generateResponse(Request request, Response response, int code, String message, Throwable cause,
                Callback callback) {
            String text = message == null || message.isBlank() ? "HTTP " + code : message;
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            String type = code >= 500 ? "server_error" : "invalid_request_error";
            response.write(true, ByteBuffer.wrap(ApiError.body(code, text, type, null, null)), callback);
        }
    }
}
