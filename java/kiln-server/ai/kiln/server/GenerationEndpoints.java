package ai.kiln.server;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.TokenLogprobs;
import ai.kiln.api.FinishReason;
import ai.kiln.api.RequestRejectedException;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import org.eclipse.jetty.server.Request;

/**
 * {@code /v1/completions} and {@code /v1/chat/completions} over the {@link Engine}: each prompt
 * becomes one engine request (its {@code n} completions shared), answered as one JSON body or as
 * server-sent events. Every engine request is submitted streaming, so the server sees its first
 * token (the end of its wait, and time to first token) and each later token as they come.
 */
final class GenerationEndpoints {

    private final Engine engine;
    private final Tokenizer tokenizer;          // null: the model has no tokenizer.json
    private final String modelName;
    private final KilnServer.Options options;
    private final ServerMetrics metrics;
    private final Set<SseStream> streams;

    private final Set<RequestHandle> inFlight = ConcurrentHashMap.newKeySet();
    /** Engine requests admitted whose first token has not come yet: bounded by max-waiting. */
    private final AtomicInteger waiting = new AtomicInteger();
    /** Generation exchanges not yet completed (the response not fully written). */
    private final AtomicInteger activeExchanges = new AtomicInteger();
    private final Object idle = new Object();
    private final Map<Integer, String> tokenStrings = new ConcurrentHashMap<>();

    GenerationEndpoints(Engine engine, Tokenizer tokenizer, String modelName, KilnServer.Options options,
            ServerMetrics metrics, Set<SseStream> streams) {
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.modelName = modelName;
        this.options = options;
        this.metrics = metrics;
        this.streams = streams;
    }

    // ---- gauges and drain ---------------------------------------------------------------------

    double running() {
        return engine.metrics().numRunning();
    }

    double waiting() {
        EngineMetrics m = engine.metrics();
        return m.numWaiting();
    }

    double kvCacheUsage() {
        return engine.metrics().kvCacheUsage();
    }

    double prefixCacheHitRate() {
        return engine.metrics().prefixCacheHitRate();
    }

    int maxModelLen() {
        return engine.maxModelLen();
    }

    int inFlight() {
        return activeExchanges.get();
    }

    /** Waits until no generation request is in flight, at most {@code timeout}; true if none is. */
    boolean awaitIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (idle) {
            while (activeExchanges.get() > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                idle.wait(Math.max(1, left / 1_000_000));
            }
        }
        return true;
    }

    /** Cancels every engine request in flight (their blocks are freed at the engine's next step). */
    void cancelAll() {
        for (RequestHandle handle : inFlight) {
            handle.cancel();
        }
    }

    // ---- endpoints ----------------------------------------------------------------------------

    void completions(Exchange exchange, CompletionRequest req) {
        if (req.echo() && req.logprobs() != null) {
            throw ApiError.invalid("'echo' together with 'logprobs' is not supported (prompt log-probabilities are"
                    + " not computed).", "echo", "unsupported_parameter");
        }
        List<GenerateRequest> requests = new ArrayList<>();
        for (int i = 0; i < req.prompts().size(); i++) {
            CompletionRequest.Prompt p = req.prompts().get(i);
            String id = exchange.requestId + (req.prompts().size() > 1 ? "-" + i : "");
            requests.add(new GenerateRequest(id, p.text(), p.tokenIds(), null, req.params(), true));
        }
        Call call = start(exchange, requests, "prompt");
        String id = "cmpl-" + exchange.requestId;
        long created = System.currentTimeMillis() / 1000;
        int n = req.params().n();
        if (req.stream()) {
            streamCompletions(exchange, call, req, id, created, n);
        } else {
            call.results.whenComplete(guarded(exchange, watchForGoneClient(exchange, call), (results, failure) -> {
                if (failure != null) {
                    exchange.sendError(failureError(failure));
                    return;
                }
                ApiError aborted = aborted(results);
                if (aborted != null) {
                    exchange.sendError(aborted);
                    return;
                }
                ObjectNode root = envelope(id, "text_completion", created);
                ArrayNode choices = root.putArray("choices");
                int prompt = 0;
                int completion = 0;
                for (int p = 0; p < results.size(); p++) {
                    GenerateResult r = results.get(p);
                    prompt += r.promptTokenIds().length;
                    String echo = req.echo() ? promptText(req.prompts().get(p), r) : "";
                    for (GenerateResult.Completion c : r.completions()) {
                        completion += c.tokenIds().length;
                        ObjectNode choice = choices.addObject();
                        choice.put("index", p * n + c.index());
                        choice.put("text", echo + c.text());
                        if (req.logprobs() != null) {
                            choice.set("logprobs", completionLogprobs(c.logprobs(), new int[] {0}));
                        } else {
                            choice.putNull("logprobs");
                        }
                        choice.put("finish_reason", c.finishReason().apiName());
                    }
                }
                root.set("usage", usage(prompt, completion));
                exchange.promptTokens = prompt;
                exchange.completionTokens = completion;
                exchange.sendJson(200, root);
            }));
        }
    }

    void chat(Exchange exchange, ChatRequest req) {
        GenerateRequest request = new GenerateRequest(exchange.requestId, null, null, req.messages(), req.params(), true);
        Call call = start(exchange, List.of(request), "messages");
        String id = "chatcmpl-" + exchange.requestId;
        long created = System.currentTimeMillis() / 1000;
        if (req.stream()) {
            streamChat(exchange, call, req, id, created);
        } else {
            call.results.whenComplete(guarded(exchange, watchForGoneClient(exchange, call), (results, failure) -> {
                if (failure != null) {
                    exchange.sendError(failureError(failure));
                    return;
                }
                ApiError aborted = aborted(results);
                if (aborted != null) {
                    exchange.sendError(aborted);
                    return;
                }
                GenerateResult r = results.get(0);
                ObjectNode root = envelope(id, "chat.completion", created);
                ArrayNode choices = root.putArray("choices");
                int completion = 0;
                for (GenerateResult.Completion c : r.completions()) {
                    completion += c.tokenIds().length;
                    ObjectNode choice = choices.addObject();
                    choice.put("index", c.index());
                    ObjectNode message = choice.putObject("message");
                    message.put("role", "assistant");
                    message.put("content", c.text());
                    message.putNull("refusal");
                    if (req.logprobs()) {
                        ObjectNode logprobs = choice.putObject("logprobs");
                        logprobs.set("content", chatLogprobs(c.logprobs()));
                        logprobs.putNull("refusal");
                    } else {
                        choice.putNull("logprobs");
                    }
                    choice.put("finish_reason", c.finishReason().apiName());
                }
                int prompt = r.promptTokenIds().length;
                root.set("usage", usage(prompt, completion));
                exchange.promptTokens = prompt;
                exchange.completionTokens = completion;
                exchange.sendJson(200, root);
            }));
        }
    }

    // ---- streaming ----------------------------------------------------------------------------

    private void streamCompletions(Exchange exchange, Call call, CompletionRequest req, String id, long created, int n) {
        SseStream sse = openStream(exchange, call);
        boolean[] echoed = new boolean[call.handles.size() * n];
        int[] textOffset = new int[call.handles.size() * n];
        call.subscribe(new OutputListener() {
            @Override
            public void output(int promptIndex, RequestOutput out) {
                int index = promptIndex * n + out.index();
                ObjectNode chunk = envelope(id, "text_completion", created);
                ObjectNode choice = chunk.putArray("choices").addObject();
                choice.put("index", index);
                String text = out.text();
                synchronized (echoed) {
                    if (req.echo() && !echoed[index]) {
                        echoed[index] = true;
                        text = promptText(req.prompts().get(promptIndex), call.handles.get(promptIndex)) + text;
                    }
                }
                choice.put("text", text);
                if (req.logprobs() != null) {
                    synchronized (textOffset) {
                        int[] offset = {textOffset[index]};
                        choice.set("logprobs", completionLogprobs(out.logprobs(), offset));
                        textOffset[index] = offset[0];
                    }
                } else {
                    choice.putNull("logprobs");
                }
                choice.put("finish_reason", out.finished() ? out.finishReason().apiName() : null);
                if (req.includeUsage()) {
                    chunk.putNull("usage");
                }
                sse.send(json(chunk));
            }

            @Override
            public void finished() {
                finishStream(sse, req.includeUsage(), envelope(id, "text_completion", created), call);
            }

            @Override
            public void failed(Throwable failure) {
                endStreamWithError(sse, failure);
            }
        });
    }

    private void streamChat(Exchange exchange, Call call, ChatRequest req, String id, long created) {
        SseStream sse = openStream(exchange, call);
        int n = req.params().n();
        for (int i = 0; i < n; i++) {
            ObjectNode chunk = envelope(id, "chat.completion.chunk", created);
            ObjectNode choice = chunk.putArray("choices").addObject();
            choice.put("index", i);
            ObjectNode delta = choice.putObject("delta");
            delta.put("role", "assistant");
            delta.put("content", "");
            choice.putNull("logprobs");
            choice.putNull("finish_reason");
            if (req.includeUsage()) {
                chunk.putNull("usage");
            }
            sse.send(json(chunk));
        }
        call.subscribe(new OutputListener() {
            @Override
            public void output(int promptIndex, RequestOutput out) {
                boolean hasContent = !out.text().isEmpty() || (out.logprobs() != null && !out.logprobs().isEmpty());
                if (hasContent) {
                    ObjectNode chunk = envelope(id, "chat.completion.chunk", created);
                    ObjectNode choice = chunk.putArray("choices").addObject();
                    choice.put("index", out.index());
                    choice.putObject("delta").put("content", out.text());
                    if (req.logprobs()) {
                        ObjectNode logprobs = choice.putObject("logprobs");
                        logprobs.set("content", chatLogprobs(out.logprobs()));
                        logprobs.putNull("refusal");
                    } else {
                        choice.putNull("logprobs");
                    }
                    choice.putNull("finish_reason");
                    if (req.includeUsage()) {
                        chunk.putNull("usage");
                    }
                    sse.send(json(chunk));
                }
                if (out.finished()) {
                    ObjectNode chunk = envelope(id, "chat.completion.chunk", created);
                    ObjectNode choice = chunk.putArray("choices").addObject();
                    choice.put("index", out.index());
                    choice.putObject("delta");
                    choice.putNull("logprobs");
                    choice.put("finish_reason", out.finishReason().apiName());
                    if (req.includeUsage()) {
                        chunk.putNull("usage");
                    }
                    sse.send(json(chunk));
                }
            }

            @Override
            public void finished() {
                finishStream(sse, req.includeUsage(), envelope(id, "chat.completion.chunk", created), call);
            }

            @Override
            public void failed(Throwable failure) {
                endStreamWithError(sse, failure);
            }
        });
    }

    private SseStream openStream(Exchange exchange, Call call) {
        SseStream sse = new SseStream(exchange.response, exchange.callback, options.maxStreamBufferBytes(), () -> {
            if (!call.isDone()) {
                metrics.cancelled.inc();
            }
            call.cancel();
        });
        streams.add(sse);
        Request.addCompletionListener(exchange.request, failure -> streams.remove(sse));
        return sse;
    }

    /** An engine failure mid-stream: an error event (the status is already sent), then the end. */
    private void endStreamWithError(SseStream sse, Throwable failure) {
        ApiError error = failureError(failure);
        ObjectNode root = Exchange.JSON.createObjectNode();
        ObjectNode body = root.putObject("error");
        body.put("message", error.getMessage());
        body.put("type", error.type);
        body.putNull("param");
        body.put("code", error.code);
        sse.send(json(root));
        sse.finish();
    }

    // ---- submission ---------------------------------------------------------------------------

    /** Receives the outputs of all of a call's engine requests; {@link #finished} or {@link #failed} comes last, once. */
    private interface OutputListener {
        void output(int promptIndex, RequestOutput out);

        void finished();

        void failed(Throwable failure);
    }

    private record Early(int promptIndex, RequestOutput out) {
    }

    /** The engine requests of one HTTP request. */
    private final class Call {
        final Exchange exchange;
        final List<RequestHandle> handles = new ArrayList<>();
        final boolean[] started;                                 // first output seen, per handle; guarded by this
        final AtomicInteger completionTokens = new AtomicInteger();
        final AtomicBoolean ended = new AtomicBoolean();
        final long[] lastTokenNanos;
        CompletableFuture<List<GenerateResult>> results;
        private OutputListener listener;                         // guarded by this
        private final List<Early> early = new ArrayList<>();     // outputs before subscribe, guarded by this
        private int open;                                        // engine streams not ended, guarded by this
        private Throwable firstFailure;                          // guarded by this

        Call(Exchange exchange, int size) {
            this.exchange = exchange;
            this.started = new boolean[size];
            this.lastTokenNanos = new long[size];
            this.open = size;
        }

        int promptTokens() {
            int sum = 0;
            for (RequestHandle h : handles) {
                sum += h.promptTokenIds().length;
            }
            return sum;
        }

        boolean isDone() {
            return handles.stream().allMatch(RequestHandle::isDone);
        }

        void cancel() {
            for (RequestHandle h : handles) {
                h.cancel();
            }
        }

        void onOutput(int promptIndex, RequestOutput out) {
            long now = System.nanoTime();
            int tokens = out.tokenIds().length;
            completionTokens.addAndGet(tokens);
            metrics.generationTokens.inc(tokens);
            synchronized (this) {
                if (!started[promptIndex]) {
                    started[promptIndex] = true;
                    waiting.decrementAndGet();
                    metrics.timeToFirstToken.observe((now - exchange.arrivalNanos) / 1e9);
                } else if (tokens > 0) {
                    double perToken = (now - lastTokenNanos[promptIndex]) / 1e9 / tokens;
                    for (int t = 0; t < tokens; t++) {
                        metrics.timePerOutputToken.observe(perToken);
                    }
                }
                if (tokens > 0) {
                    lastTokenNanos[promptIndex] = now;
                }
                // NOTE: delivered under the call's lock, so outputs reach the listener in order.
                if (listener == null) {
                    early.add(new Early(promptIndex, out));
                } else {
                    deliver(listener, promptIndex, out);
                }
            }
        }

        /** A listener that throws ends the call: the request is cancelled and the exchange failed. */
        private void deliver(OutputListener l, int promptIndex, RequestOutput out) {
            try {
                l.output(promptIndex, out);
            } catch (RuntimeException e) {
                cancel();
                exchange.callback.failed(e);
            }
        }

        /** One engine request's stream ended (failure null: completed); the last one ends the call. */
        void onEnd(int promptIndex, Throwable failure) {
            boolean last;
            synchronized (this) {
                if (!started[promptIndex]) {
                    started[promptIndex] = true;
                    waiting.decrementAndGet();
                }
                if (failure != null && firstFailure == null) {
                    firstFailure = failure;
                }
                last = --open == 0;
                if (last && listener != null) {
                    endListener();
                }
            }
        }

        /** Releases places among the waiting of handles never submitted or never started. */
        synchronized void releaseUnstarted() {
            for (int i = 0; i < started.length; i++) {
                if (!started[i]) {
                    started[i] = true;
                    waiting.decrementAndGet();
                }
            }
        }

        private void endListener() {
            if (!ended.compareAndSet(false, true)) {
                return;
            }
            exchange.promptTokens = promptTokens();
            exchange.completionTokens = completionTokens.get();
            if (firstFailure != null) {
                listener.failed(firstFailure);
            } else {
                listener.finished();
            }
        }

        synchronized void subscribe(OutputListener l) {
            listener = l;
            for (Early e : early) {
                deliver(l, e.promptIndex(), e.out());
            }
            early.clear();
            if (open == 0) {
                endListener();
            }
        }
    }

    /**
     * Admits the engine requests of one HTTP request (429 past max-waiting), submits them and
     * tracks them until the response is written. Throws the 4xx/5xx for a request the engine refuses.
     */
    private Call start(Exchange exchange, List<GenerateRequest> requests, String promptParam) {
        int k = requests.size();
        // NOTE: more prompts than may ever wait at once would get 429 however long the client retried.
        // The n sequences of a prompt are not limited here: the scheduler runs them in turns.
        if (k > options.maxWaiting()) {
            throw ApiError.invalid("The request has " + k + " prompts, more than the server's --max-waiting of "
                    + options.maxWaiting() + " that may wait at once; send at most " + options.maxWaiting()
                    + " prompts per request.", promptParam, "too_many_prompts");
        }
        while (true) {
            int now = waiting.get();
            if (now + k > options.maxWaiting()) {
                metrics.rejected.labelValues("max_waiting").inc();
                throw ApiError.overloaded(now, 1);
            }
            if (waiting.compareAndSet(now, now + k)) {
                break;
            }
        }
        Call call = new Call(exchange, k);
        List<CompletableFuture<GenerateResult>> futures = new ArrayList<>();
        Relay[] relays = new Relay[k];
        try {
            for (int i = 0; i < k; i++) {
                RequestHandle handle = engine.submit(requests.get(i));
                call.handles.add(handle);
                inFlight.add(handle);
                int index = i;
                futures.add(handle.result().whenComplete((r, f) -> inFlight.remove(handle)));
                relays[i] = new Relay(call, index);
            }
        } catch (RuntimeException e) {
            call.cancel();
            for (RequestHandle h : call.handles) {
                inFlight.remove(h);
            }
            call.releaseUnstarted();
            throw submitError(e, promptParam);
        }
        activeExchanges.incrementAndGet();
        Request.addCompletionListener(exchange.request, failure -> {
            if (failure != null) {
                call.cancel();
            }
            if (activeExchanges.decrementAndGet() == 0) {
                synchronized (idle) {
                    idle.notifyAll();
                }
            }
        });
        // A client that goes away while a non-streamed request runs: Jetty reports it here.
        exchange.request.addFailureListener(failure -> call.cancel());
        // NOTE: generation may be quiet for longer than the connector's idle timeout; that is not a failure.
        exchange.request.addIdleTimeoutListener(timeout -> false);
        call.results = CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).thenApply(v -> {
            List<GenerateResult> out = new ArrayList<>();
            for (CompletableFuture<GenerateResult> f : futures) {
                out.add(f.join());
            }
            return out;
        });
        call.results.whenComplete((results, failure) -> {
            if (results != null) {
                for (GenerateResult r : results) {
                    metrics.promptTokens.inc(r.promptTokenIds().length);
                }
            }
            metrics.requestLatency.observe((System.nanoTime() - exchange.arrivalNanos) / 1e9);
        });
        for (int i = 0; i < k; i++) {
            call.handles.get(i).subscribe(relays[i]);
        }
        return call;
    }

    /** Feeds one engine request's outputs to its call. */
    private static final class Relay implements Flow.Subscriber<RequestOutput> {
        private final Call call;
        private final int index;

        Relay(Call call, int index) {
            this.call = call;
            this.index = index;
        }

        @Override
        public void onSubscribe(Flow.Subscription subscription) {
            // NOTE: the server's own bounded buffer (SseStream) applies backpressure; take all.
            subscription.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(RequestOutput item) {
            call.onOutput(index, item);
        }

        @Override
        public void onError(Throwable throwable) {
            call.onEnd(index, throwable);
        }

        @Override
        public void onComplete() {
            call.onEnd(index, null);
        }
    }

    private static ApiError submitError(RuntimeException e, String promptParam) {
        if (e instanceof ApiError a) {
            return a;
        }
        if (e instanceof RequestRejectedException) {
            return ApiError.invalid("This model's maximum context length is exceeded: " + e.getMessage() + ".",
                    promptParam, "context_length_exceeded");
        }
        if (e instanceof IllegalStateException) {
            return ApiError.unavailable("The engine is not taking requests: " + e.getMessage(), "engine_closed");
        }
        if (e instanceof IllegalArgumentException) {
            return ApiError.invalid(capitalize(e.getMessage()) + ".", promptParam);
        }
        return ApiError.internal("Could not start the request: " + e);
    }

    private static ApiError failureError(Throwable failure) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause()
                : failure;
        if (cause instanceof RequestAbortedException) {
            return ApiError.unavailable("The request was cancelled: " + cause.getMessage(), "request_cancelled");
        }
        return ApiError.internal("Generation failed: " + cause.getMessage());
    }

    /** Cancels {@code call} if its client goes before the answer is written (a non-streamed request). */
    private DisconnectWatch watchForGoneClient(Exchange exchange, Call call) {
        return DisconnectWatch.start(exchange, () -> {
            if (!call.isDone()) {
                metrics.cancelled.inc();
            }
            call.cancel();
        });
    }

    /**
     * Runs a responder once the watch for a gone client is stopped; if it throws, the client still
     * gets an answer (a 500) and the exchange completes.
     */
    private static <T> BiConsumer<T, Throwable> guarded(Exchange exchange, DisconnectWatch watch,
            BiConsumer<T, Throwable> responder) {
        return (value, failure) -> {
            watch.stop();
            try {
                responder.accept(value, failure);
            } catch (RuntimeException e) {
                if (exchange.response.isCommitted()) {
                    exchange.callback.failed(e);
                } else {
                    exchange.sendError(ApiError.internal("Could not write the response: " + e));
                }
            }
        };
    }

    /** A non-streamed request cancelled before it finished (the drain's grace period ran out) is a 503. */
    private static ApiError aborted(List<GenerateResult> results) {
        for (GenerateResult r : results) {
            for (GenerateResult.Completion c : r.completions()) {
                if (c.finishReason() == FinishReason.ABORT) {
                    return ApiError.unavailable("The request was cancelled: " + c.stopReason(), "request_cancelled");
                }
            }
        }
        return null;
    }

    private static String capitalize(String s) {
        return s == null || s.isEmpty() ? "invalid request" : Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    // ---- response pieces ----------------------------------------------------------------------

    /** Ends a stream: the usage chunk (empty choices) when the client asked for it, then [DONE]. */
    private void finishStream(SseStream sse, boolean includeUsage, ObjectNode usageChunk, Call call) {
        if (includeUsage) {
            usageChunk.putArray("choices");
            usageChunk.set("usage", usage(call.promptTokens(), call.completionTokens.get()));
            sse.send(json(usageChunk));
        }
        sse.finish();
    }

    private ObjectNode envelope(String id, String object, long created) {
        ObjectNode root = Exchange.JSON.createObjectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", created);
        root.put("model", modelName);
        root.putNull("system_fingerprint");
        return root;
    }

    private static ObjectNode usage(int prompt, int completion) {
        ObjectNode usage = Exchange.JSON.createObjectNode();
        usage.put("prompt_tokens", prompt);
        usage.put("completion_tokens", completion);
        usage.put("total_tokens", prompt + completion);
        return usage;
    }

    private String promptText(CompletionRequest.Prompt prompt, GenerateResult result) {
        return prompt.text() != null ? prompt.text() : decode(result.promptTokenIds());
    }

    private String promptText(CompletionRequest.Prompt prompt, RequestHandle handle) {
        return prompt.text() != null ? prompt.text() : decode(handle.promptTokenIds());
    }

    private String decode(int[] ids) {
        return tokenizer == null ? "" : tokenizer.decode(ids, false);
    }

    /** The text of one token for log-probability listings (special tokens included). */
    private String tokenString(int id) {
        if (tokenizer == null) {
            return "token_id:" + id;
        }
        return tokenStrings.computeIfAbsent(id, i -> tokenizer.decode(new int[] {i}, false));
    }

    /** The legacy completions shape: tokens, token_logprobs, top_logprobs and text_offset; offset[0] carries on. */
    private ObjectNode completionLogprobs(List<TokenLogprobs> logprobs, int[] offset) {
        ObjectNode node = Exchange.JSON.createObjectNode();
        ArrayNode tokens = node.putArray("tokens");
        ArrayNode tokenLogprobs = node.putArray("token_logprobs");
        ArrayNode top = node.putArray("top_logprobs");
        ArrayNode textOffset = node.putArray("text_offset");
        if (logprobs != null) {
            for (TokenLogprobs lp : logprobs) {
                String token = tokenString(lp.tokenId());
                tokens.add(token);
                tokenLogprobs.add(lp.logprob());
                // NOTE: keyed by text, as OpenAI's shape is; of tokens with the same text the chosen
                // one, then the most likely, keeps the key.
                ObjectNode alternatives = top.addObject();
                alternatives.put(token, lp.logprob());
                for (TokenLogprobs.Candidate c : lp.top()) {
                    String text = tokenString(c.tokenId());
                    if (!alternatives.has(text)) {
                        alternatives.put(text, c.logprob());
                    }
                }
                textOffset.add(offset[0]);
                offset[0] += token.length();
            }
        }
        return node;
    }

    /** The chat shape: one entry per token with token, logprob, bytes and top_logprobs. */
    private ArrayNode chatLogprobs(List<TokenLogprobs> logprobs) {
        ArrayNode content = Exchange.JSON.createArrayNode();
        if (logprobs == null) {
            return content;
        }
        for (TokenLogprobs lp : logprobs) {
            ObjectNode entry = content.addObject();
            tokenEntry(entry, lp.tokenId(), lp.logprob());
            ArrayNode top = entry.putArray("top_logprobs");
            for (TokenLogprobs.Candidate c : lp.top()) {
                tokenEntry(top.addObject(), c.tokenId(), c.logprob());
            }
        }
        return content;
    }

    private void tokenEntry(ObjectNode entry, int tokenId, float logprob) {
        String token = tokenString(tokenId);
        entry.put("token", token);
        entry.put("logprob", logprob);
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
            bytes.add(b & 0xff);
        }
    }

    private static String json(ObjectNode node) {
        try {
            return Exchange.JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
