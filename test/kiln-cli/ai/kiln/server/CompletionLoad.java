package ai.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * A bounded load of /v1/completions requests: a fixed number of workers, each sending its next
 * request as soon as its last one ended, alternating streamed and whole answers, until stopped.
 * Every call has a deadline, so a request that hangs ends as a failure rather than hanging the
 * test. Records what each request got back and which server answered it (the balancer's
 * {@code x-served-by} header), and which streams are open at any moment.
 */
final class CompletionLoad implements AutoCloseable {

    /** Longest a request may take, headers and body together. */
    static final Duration CALL_DEADLINE = Duration.ofSeconds(30);

    /**
     * What the requests ask for: tokens of a streamed and of a whole answer (every one generated:
     * ignore_eos), and whether any request is streamed or whole only.
     */
    record Shape(int streamedTokens, int wholeTokens, boolean streamedOnly, boolean wholeOnly) {

        static Shape mixed(int streamedTokens, int wholeTokens) {
            return new Shape(streamedTokens, wholeTokens, false, false);
        }

        static Shape streamed(int tokens) {
            return new Shape(tokens, 0, true, false);
        }

        static Shape whole(int tokens) {
            return new Shape(0, tokens, false, true);
        }
    }

    /**
     * One request's end.
     *
     * @param server    the x-served-by header; null if no headers came (or the server was reached directly)
     * @param status    the HTTP status; -1 if no headers came
     * @param complete  a stream ended with {@code data: [DONE]}, or a whole answer is a finished completion
     * @param failure   what went wrong, for the messages; null for a complete 200
     * @param sentNanos   when it was sent (System.nanoTime())
     * @param headersNanos when its headers came; 0 if none did
     * @param endNanos     when it ended, or failed
     */
    record Outcome(String id, boolean streamed, String server, int status, boolean complete, String failure,
            long sentNanos, long headersNanos, long endNanos) {

        boolean ok() {
            return status == 200 && complete;
        }

        boolean timedOut() {
            return failure != null && failure.startsWith("timed out");
        }

        @Override
        public String toString() {
            return id + (streamed ? " (streamed)" : " (whole)") + " server=" + server + " status=" + status
                    + (failure == null ? "" : " failure=" + failure);
        }
    }

    /** A request whose headers have come (at {@code headersNanos}) and whose end has not; its data events so far. */
    record Open(String id, boolean streamed, String server, long headersNanos, AtomicInteger events) {
    }

    private final HttpClient http;
    private final URI completions;
    private final String model;
    private final Shape shape;
    private final String name;
    private final ExecutorService workers;
    private final List<CompletableFuture<?>> running = new ArrayList<>();
    private final List<Outcome> outcomes = new ArrayList<>();
    private final Map<String, Open> open = new ConcurrentHashMap<>();
    private final Map<String, CompletableFuture<?>> inFlight = new ConcurrentHashMap<>();
    private volatile boolean stopping;

    private CompletionLoad(String base, String model, Shape shape, String name, int workerCount) {
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        this.completions = URI.create(base + "/v1/completions");
        this.model = model;
        this.shape = shape;
        this.name = name;
        this.workers = Executors.newFixedThreadPool(workerCount, r -> {
            Thread t = new Thread(r, name + "-worker");
            t.setDaemon(true);
            return t;
        });
        for (int w = 0; w < workerCount; w++) {
            int worker = w;
            running.add(CompletableFuture.runAsync(() -> work(worker), workers));
        }
    }

    /** Starts {@code workers} workers sending to {@code base}; {@code name} prefixes the request ids. */
    static CompletionLoad start(String base, String model, Shape shape, String name, int workers) {
        return new CompletionLoad(base, model, shape, name, workers);
    }

    private void work(int worker) {
        for (int k = 0; !stopping; k++) {
            boolean streamed = !shape.wholeOnly() && (shape.streamedOnly() || (worker + k) % 2 == 0);
            Outcome outcome = send(name + "-" + worker + "-" + k, streamed);
            synchronized (outcomes) {
                outcomes.add(outcome);
            }
        }
    }

    private Outcome send(String id, boolean streamed) {
        String body = "{\"model\": \"" + model + "\", \"prompt\": \"The quick brown fox\", \"max_tokens\": "
                + (streamed ? shape.streamedTokens() : shape.wholeTokens())
                + ", \"temperature\": 0, \"ignore_eos\": true, \"stream\": " + streamed + "}";
        HttpRequest request = HttpRequest.newBuilder(completions).timeout(CALL_DEADLINE)
                .header("Content-Type", "application/json").header("x-request-id", id)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long sent = System.nanoTime();
        // Set on the client's thread when the headers come, read by this one.
        AtomicLong headersAt = new AtomicLong();
        AtomicInteger headStatus = new AtomicInteger(-1);
        AtomicReference<String> server = new AtomicReference<>();
        AtomicInteger events = new AtomicInteger();
        List<String> lines = new ArrayList<>();
        HttpResponse.BodyHandler<Void> handler = info -> {
            server.set(info.headers().firstValue("x-served-by").orElse(null));
            headStatus.set(info.statusCode());
            headersAt.set(System.nanoTime());
            open.put(id, new Open(id, streamed, server.get(), headersAt.get(), events));
            return HttpResponse.BodySubscribers.fromLineSubscriber(new Lines(lines, events));
        };
        CompletableFuture<HttpResponse<Void>> call = http.sendAsync(request, handler);
        inFlight.put(id, call);
        try {
            HttpResponse<Void> response = call.get(CALL_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
            long end = System.nanoTime();
            int status = response.statusCode();
            List<String> got;
            synchronized (lines) {
                got = List.copyOf(lines);
            }
            String problem = status != 200 ? "status " + status + ": " + String.join("\n", got)
                    : streamed ? streamProblem(got) : wholeProblem(got);
            return new Outcome(id, streamed, server.get(), status, problem == null, problem, sent, headersAt.get(),
                    end);
        } catch (TimeoutException e) {
            call.cancel(true);
            return new Outcome(id, streamed, server.get(), headStatus.get(), false, "timed out after " + CALL_DEADLINE,
                    sent, headersAt.get(), System.nanoTime());
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            return new Outcome(id, streamed, server.get(), headStatus.get(), false,
                    cause.getClass().getSimpleName() + ": " + cause.getMessage(), sent, headersAt.get(),
                    System.nanoTime());
        } finally {
            inFlight.remove(id);
            open.remove(id);
        }
    }

    /** Null for a stream of completion events ending with [DONE]; else what is wrong with it. */
    private static String streamProblem(List<String> lines) {
        List<String> data = lines.stream().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        if (data.isEmpty() || !data.get(data.size() - 1).equals("[DONE]")) {
            return "the stream ended without [DONE] after " + data.size() + " events";
        }
        return data.size() >= 2 ? null : "a stream of no events";
    }

    /** Null for a whole completion with its finish reason; else what is wrong with it. */
    private static String wholeProblem(List<String> lines) {
        String body = String.join("\n", lines);
        try {
            JsonNode finish = ServerHarness.json(body).at("/choices/0/finish_reason");
            return finish.isTextual() ? null : "no finish_reason: " + body;
        } catch (Exception e) {
            return "not a completion: " + body;
        }
    }

    /** Collects the lines of a body as they come. */
    private record Lines(List<String> lines, AtomicInteger events) implements Flow.Subscriber<String> {

        @Override
        public void onSubscribe(Flow.Subscription subscription) {
            subscription.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(String line) {
            synchronized (lines) {
                lines.add(line);
            }
            if (line.startsWith("data: ")) {
                events.incrementAndGet();
            }
        }

        @Override
        public void onError(Throwable throwable) {
        }

        @Override
        public void onComplete() {
        }
    }

    /** The requests whose headers have come and whose end has not. */
    List<Open> open() {
        return List.copyOf(open.values());
    }

    /** The ids of the requests {@code server} has begun answering and not finished. */
    Set<String> openOn(String server) {
        return open.values().stream().filter(o -> server.equals(o.server())).map(Open::id).collect(Collectors.toSet());
    }

    /** The outcomes so far. */
    List<Outcome> outcomes() {
        synchronized (outcomes) {
            return List.copyOf(outcomes);
        }
    }

    /** Waits up to {@code timeout} for the open requests to satisfy {@code condition}. */
    void awaitOpen(Predicate<List<Open>> condition, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.test(open())) {
                return;
            }
            Thread.sleep(2);
        }
        throw new AssertionError("the open requests never got so: " + open() + "; ended so far: " + outcomes().size());
    }

    /** Waits up to {@code timeout} for an outcome matching {@code condition}. */
    Outcome awaitOutcome(Predicate<Outcome> condition, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (Outcome o : outcomes()) {
                if (condition.test(o)) {
                    return o;
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError("no request ended so within " + timeout + "; ended: " + outcomes().size());
    }

    /** Lets the requests in flight end (each within its deadline), sends no more, and returns every outcome. */
    List<Outcome> stop() throws Exception {
        stopping = true;
        CompletableFuture.allOf(running.toArray(CompletableFuture[]::new))
                .get(CALL_DEADLINE.toSeconds() + 10, TimeUnit.SECONDS);
        workers.shutdown();
        return outcomes();
    }

    /** Stops at once: the requests in flight are cancelled. */
    @Override
    public void close() throws InterruptedException {
        stopping = true;
        inFlight.values().forEach(call -> call.cancel(true));
        workers.shutdownNow();
        workers.awaitTermination(10, TimeUnit.SECONDS);
    }
}
