package ai.kiln.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Flow;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A serving load against an OpenAI-compatible server, the way vLLM's benchmark_serving.py drives
 * one: every prompt is a streamed {@code POST} to the {@link ServingEndpoint} ({@code ignore_eos},
 * the most tokens = the prompt's output length, usage in the last chunk), sent at its arrival time
 * (all at once, or a Poisson process), at most {@code maxConcurrency} in flight. The arrival of
 * each chunk that carries tokens is timed.
 * A request fails on an HTTP error, an error event in the stream, a stream that ends before
 * {@code [DONE]}, a connection error or a timeout; failures are counted, never dropped.
 */
public final class ServingBenchmark {

    /**
     * @param baseUrl        the server's root, e.g. http://127.0.0.1:8000 (the endpoint's path is added)
     * @param endpoint       the route every request goes to
     * @param model          the model name sent in each request
     * @param apiKey         sent as a bearer token when not null
     * @param requestRate    mean requests per second of the arrivals; infinite: all at once
     * @param burstiness     the shape of the gamma-distributed gaps between arrivals (1: Poisson)
     * @param maxConcurrency the most requests in flight; null: no limit
     * @param numWarmups     requests sent (and awaited) before the timed run, not counted
     * @param requestTimeout a request still running after this long fails
     * @param seed           seeds the arrival times
     * @param sampling       the sampling fields of each request
     * @param serviceLevels  the objectives goodput counts against; null: no goodput
     */
    public record Config(URI baseUrl, ServingEndpoint endpoint, String model, String apiKey, double requestRate,
            double burstiness, Integer maxConcurrency, int numWarmups, Duration requestTimeout, long seed,
            SamplingOptions sampling, ServiceLevels serviceLevels) {

        public Config {
            Objects.requireNonNull(baseUrl, "baseUrl");
            Objects.requireNonNull(endpoint, "endpoint");
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(sampling, "sampling");
            if (!(requestRate > 0)) {
                throw new IllegalArgumentException("--request-rate must be > 0 (or inf), got " + requestRate);
            }
            checkLoad(burstiness, maxConcurrency, numWarmups);
        }

        /**
         * The checks of the load's shape, for a command to make before it starts anything (a
         * server to measure, say), when the rest of the configuration is not known yet.
         */
        public static void checkLoad(double burstiness, Integer maxConcurrency, int numWarmups) {
            requireBurstiness(burstiness);
            if (maxConcurrency != null && maxConcurrency < 1) {
                throw new IllegalArgumentException("--max-concurrency must be >= 1, got " + maxConcurrency);
            }
            if (numWarmups < 0) {
                throw new IllegalArgumentException("--num-warmups must be >= 0, got " + numWarmups);
            }
        }

        /** The same run at another rate (a sweep's next). */
        public Config withRequestRate(double rate) {
            return new Config(baseUrl, endpoint, model, apiKey, rate, burstiness, maxConcurrency, numWarmups,
                    requestTimeout, seed, sampling, serviceLevels);
        }
    }

    /** Mixed into the seed of the arrival times, so that they do not repeat the dataset's draws. */
    private static final long ARRIVAL_STREAM = 0x5DEECE66DL;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Config config;
    private final HttpClient http;
    /** The endpoint's URL: the base URL and the endpoint's path. */
    private final URI target;

    public ServingBenchmark(Config config) {
        this.config = config;
        // HTTP/1.1: one connection per request in flight, as the peers' benchmarks use.
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        this.target = resolve(config.baseUrl(), config.endpoint().path());
    }

    static URI resolve(URI base, String path) {
        String root = base.toString();
        while (root.endsWith("/")) {
            root = root.substring(0, root.length() - 1);
        }
        return URI.create(root + path);
    }

    /**
     * The id of the first model {@code GET /v1/models} lists: the served name of a one-model server.
     */
    public static String servedModel(URI baseUrl, String apiKey) {
        URI models = resolve(baseUrl, "/v1/models");
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        HttpRequest.Builder request = HttpRequest.newBuilder(models).timeout(Duration.ofSeconds(30)).GET();
        if (apiKey != null) {
            request.header("Authorization", "Bearer " + apiKey);
        }
        try {
            HttpResponse<String> response = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new IllegalStateException("GET " + models + " answered " + httpError(response.statusCode(),
                        response.body()) + "; pass --served-model-name");
            }
            JsonNode id = JSON.readTree(response.body()).at("/data/0/id");
            if (!id.isTextual()) {
                throw new IllegalStateException("GET " + models + " lists no model; pass --served-model-name");
            }
            return id.textValue();
        } catch (IOException e) {
            throw new IllegalStateException("could not ask " + models + " for the model's name (" + describe(e)
                    + "); pass --served-model-name", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** Arrival offsets in nanoseconds from the start: all 0 at an infinite rate, else exponential gaps. */
    static long[] arrivals(int n, double requestRate, long seed) {
        return arrivals(n, requestRate, 1.0, seed);
    }

    /**
     * Arrival offsets in nanoseconds from the start: all 0 at an infinite rate, else gaps drawn from
     * a gamma distribution of shape {@code burstiness} and mean 1 / rate, as vLLM's benchmark draws
     * them: burstiness 1 is a Poisson process (exponential gaps), below 1 the arrivals come in
     * bursts, above 1 more evenly (the gaps' coefficient of variation is 1 / sqrt(burstiness)).
     */
    static long[] arrivals(int n, double requestRate, double burstiness, long seed) {
        requireBurstiness(burstiness);
        long[] at = new long[n];
        if (Double.isInfinite(requestRate)) {
            return at;
        }
        SplittableRandom random = new SplittableRandom(seed ^ ARRIVAL_STREAM);
        double seconds = 0;
        for (int i = 0; i < n; i++) {
            at[i] = Math.round(seconds * 1e9);
            double gap = burstiness == 1.0 ? -Math.log(1 - random.nextDouble())
                    : gamma(burstiness, random) / burstiness;
            seconds += gap / requestRate;
        }
        return at;
    }

    static void requireBurstiness(double burstiness) {
        if (!(burstiness > 0) || Double.isInfinite(burstiness)) {
            throw new IllegalArgumentException("--burstiness must be a number > 0, got " + burstiness);
        }
    }

    /**
     * A draw from the gamma distribution of this shape and scale 1 (mean = shape), by Marsaglia and
     * Tsang's method; below shape 1, a draw at shape + 1 times u^(1 / shape).
     */
    static double gamma(double shape, SplittableRandom random) {
        if (shape < 1) {
            double u = 1 - random.nextDouble(); // (0, 1]
            return gamma(shape + 1, random) * Math.pow(u, 1 / shape);
        }
        double d = shape - 1.0 / 3;
        double c = 1 / Math.sqrt(9 * d);
        while (true) {
            double x = random.nextGaussian();
            double v = 1 + c * x;
            if (v <= 0) {
                continue;
            }
            v = v * v * v;
            double u = 1 - random.nextDouble(); // (0, 1]
            if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) {
                return d * v;
            }
        }
    }

    /**
     * Sends every prompt and waits for all of them; {@code progress}, when not null, gets a line at
     * every tenth of the run.
     */
    public ServingReport run(List<BenchPrompt> prompts, PrintWriter progress) {
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompts to send");
        }
        List<byte[]> bodies = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            bodies.add(body(prompts.get(i), i));
        }
        warmUp(prompts.get(0), bodies.get(0), progress);
        long[] arrivals = arrivals(prompts.size(), config.requestRate(), config.burstiness(), config.seed());
        Semaphore slots = config.maxConcurrency() == null ? null : new Semaphore(config.maxConcurrency());
        AtomicInteger done = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        int step = Math.max(1, prompts.size() / 10);
        List<CompletableFuture<RequestOutcome>> pending = new ArrayList<>(prompts.size());
        long start = System.nanoTime();
        for (int i = 0; i < prompts.size(); i++) {
            sleepUntil(start + arrivals[i]);
            if (slots != null) {
                slots.acquireUninterruptibly();
            }
            pending.add(send(prompts.get(i), bodies.get(i)).whenComplete((outcome, ignored) -> {
                if (slots != null) {
                    slots.release();
                }
                if (!outcome.success()) {
                    failed.incrementAndGet();
                }
                int finished = done.incrementAndGet();
                if (progress != null && (finished % step == 0 || finished == prompts.size())) {
                    progress.printf("bench serve: %d/%d done, %d failed%n", finished, prompts.size(), failed.get());
                }
            }));
        }
        List<RequestOutcome> outcomes = new ArrayList<>(prompts.size());
        for (CompletableFuture<RequestOutcome> f : pending) {
            outcomes.add(f.join());
        }
        double duration = (System.nanoTime() - start) / 1e9;
        return ServingReport.of(outcomes, duration, config.serviceLevels());
    }

    private void warmUp(BenchPrompt prompt, byte[] body, PrintWriter progress) {
        if (config.numWarmups() == 0) {
            return;
        }
        List<CompletableFuture<RequestOutcome>> warmups = new ArrayList<>();
        for (int i = 0; i < config.numWarmups(); i++) {
            warmups.add(send(prompt, body));
        }
        for (CompletableFuture<RequestOutcome> f : warmups) {
            RequestOutcome outcome = f.join();
            if (!outcome.success() && progress != null) {
                progress.println("bench serve: a warm-up request failed: " + outcome.error());
            }
        }
    }

    private static void sleepUntil(long deadline) {
        long wait;
        while ((wait = deadline - System.nanoTime()) > 0) {
            try {
                TimeUnit.NANOSECONDS.sleep(wait);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }
    }

    /** The request body: prompt, lengths and sampling; what the server streams back is timed. */
    byte[] body(BenchPrompt prompt, int index) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", config.model());
        config.endpoint().putPrompt(body, prompt);
        body.put("ignore_eos", true);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        config.sampling().putRequestFields(body, index);
        try {
            return JSON.writeValueAsBytes(body);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One streamed request; the future always completes normally, with the failure in the outcome. */
    CompletableFuture<RequestOutcome> send(BenchPrompt prompt, byte[] body) {
        HttpRequest.Builder request = HttpRequest.newBuilder(target)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (config.apiKey() != null) {
            request.header("Authorization", "Bearer " + config.apiKey());
        }
        long sent = System.nanoTime();
        EventStream stream = new EventStream(config.endpoint(), sent);
        CompletableFuture<HttpResponse<String>> call = http.sendAsync(request.build(), info -> info.statusCode() == 200
                ? HttpResponse.BodySubscribers.fromLineSubscriber(stream, s -> null, StandardCharsets.UTF_8, null)
                : HttpResponse.BodySubscribers.ofString(StandardCharsets.UTF_8));
        long timeoutMillis = config.requestTimeout().toMillis();
        return call.orTimeout(timeoutMillis, TimeUnit.MILLISECONDS).handle((response, failure) -> {
            if (failure != null) {
                call.cancel(true);
                Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                        ? failure.getCause() : failure;
                if (cause instanceof TimeoutException) {
                    return RequestOutcome.failed(prompt,
                            String.format("timed out after %.1f s", config.requestTimeout().toMillis() / 1e3));
                }
                return RequestOutcome.failed(prompt, "POST " + target + ": " + describe(cause));
            }
            if (response.statusCode() != 200) {
                return RequestOutcome.failed(prompt, httpError(response.statusCode(), response.body()));
            }
            return stream.outcome(prompt);
        });
    }

    /** "HTTP 400: message", the message taken from an OpenAI error body where there is one. */
    static String httpError(int status, String body) {
        String message = body == null ? "" : body.strip();
        try {
            JsonNode error = JSON.readTree(message).path("error");
            JsonNode text = error.isObject() ? error.path("message") : error;
            if (text.isTextual()) {
                message = text.textValue();
            }
        } catch (IOException notJson) {
            // The body as it is.
        }
        if (message.length() > 300) {
            message = message.substring(0, 300) + "...";
        }
        return "HTTP " + status + (message.isEmpty() ? "" : ": " + message);
    }

    /**
     * The exception's type and the first message along its causes, or the causes' types where none
     * has a message (HttpClient's connection errors often carry none).
     */
    static String describe(Throwable failure) {
        StringBuilder causes = new StringBuilder();
        for (Throwable t = failure.getCause(); t != null; t = t.getCause()) {
            causes.append(causes.length() == 0 ? " (caused by " : ", ").append(t.getClass().getSimpleName());
        }
        if (causes.length() > 0) {
            causes.append(')');
        }
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                return failure.getClass().getSimpleName() + ": " + t.getMessage();
            }
        }
        return failure.getClass().getSimpleName() + causes;
    }

    /**
     * Reads a server-sent event stream line by line, timing every {@code data:} event whose choices
     * carry tokens (as the endpoint tells). Lines come one at a time from the client's thread.
     */
    static final class EventStream implements Flow.Subscriber<String> {
        private final ServingEndpoint endpoint;
        private final long sent;
        private final List<Double> gaps = new ArrayList<>();
        private long first = -1;
        private long last = -1;
        private int chunks;
        private int usageTokens = -1;
        private boolean done;
        private String error;

        EventStream(ServingEndpoint endpoint, long sent) {
            this.endpoint = endpoint;
            this.sent = sent;
        }

        @Override
        public void onSubscribe(Flow.Subscription subscription) {
            subscription.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(String line) {
            long now = System.nanoTime();
            if (!line.startsWith("data:")) {
                return; // comments (heartbeats), event names, blank separators
            }
            String data = line.substring(5).strip();
            if (data.equals("[DONE]")) {
                done = true;
                return;
            }
            JsonNode event;
            try {
                event = JSON.readTree(data);
            } catch (IOException e) {
                fail("an event that is not JSON: " + abbreviate(data));
                return;
            }
            JsonNode errorNode = event.get("error");
            if (errorNode != null && !errorNode.isNull()) {
                JsonNode message = errorNode.path("message");
                fail("error event: " + (message.isTextual() ? message.textValue() : abbreviate(errorNode.toString())));
                return;
            }
            JsonNode choices = event.get("choices");
            if (choices != null && choices.isArray() && endpoint.carriesTokens(choices)) {
                if (first < 0) {
                    first = now;
                } else {
                    gaps.add((now - last) / 1e9);
                }
                last = now;
                chunks++;
            }
            JsonNode usage = event.get("usage");
            if (usage != null && usage.path("completion_tokens").isIntegralNumber()) {
                usageTokens = usage.get("completion_tokens").intValue();
            }
        }

        private void fail(String message) {
            if (error == null) {
                error = message;
            }
        }

        private static String abbreviate(String text) {
            return text.length() > 200 ? text.substring(0, 200) + "..." : text;
        }

        @Override
        public void onError(Throwable throwable) {
            // The response future fails with the same exception; the outcome is made there.
        }

        @Override
        public void onComplete() {
        }

        RequestOutcome outcome(BenchPrompt prompt) {
            if (error != null) {
                return RequestOutcome.failed(prompt, error);
            }
            if (!done) {
                return RequestOutcome.failed(prompt, "the stream ended before data: [DONE] (" + chunks + " chunks)");
            }
            if (chunks == 0) {
                return RequestOutcome.failed(prompt, "the stream carried no tokens");
            }
            double[] itl = gaps.stream().mapToDouble(Double::doubleValue).toArray();
            return new RequestOutcome(null, prompt.promptLen(), prompt.outputLen(),
                    usageTokens >= 0 ? usageTokens : chunks, (first - sent) / 1e9, (last - sent) / 1e9, itl);
        }
    }
}
