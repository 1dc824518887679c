package ai.kiln.api;

import ai.kiln.backend.Backend;
import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.model.LlamaModel;
import ai.kiln.model.ModelConfig;
import ai.kiln.model.ModelWeights;
import ai.kiln.model.WeightFiles;
import ai.kiln.sampling.BackendSampler;
import ai.kiln.sampling.Sampler;
import ai.kiln.sampling.SamplerOutput;
import ai.kiln.sampling.SamplingParams;
import ai.kiln.sampling.SequenceSampling;
import ai.kiln.scheduler.FinishReason;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.scheduler.SchedulerConfig;
import ai.kiln.scheduler.Sequence;
import ai.kiln.scheduler.StepPlan;
import ai.kiln.tensor.Tensor;
import ai.kiln.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The inference engine a Java service links: load a model once, then submit requests from any
 * number of threads. One engine loop thread runs the steps: it takes new requests and cancels,
 * asks the {@link Scheduler} for the next batch, runs the model, samples, and hands each
 * request's new tokens and text to its {@link RequestHandle}.
 *
 * <pre>{@code
 * try (Engine engine = Engine.create(Path.of("models/llama"), EngineOptions.defaults())) {
 *     GenerateResult r = engine.generate(GenerateRequest.of("Hello", SamplingParams.greedy(32)));
 *     System.out.println(r.text());
 * }
 * }</pre>
 *
 * <p>{@link #submit} tokenizes on the caller's thread, checks that the request can ever run
 * (rejecting it with the numbers otherwise) and queues it; it never waits for the engine.
 */
public final class Engine implements AutoCloseable {

    private final EngineOptions options;
    private final ModelConfig config;
    private final TextCodec codec;          // null: token ids only
    private final Backend backend;
    private final ModelWeights weights;
    private final LlamaModel model;
    private final KvCacheStorage cache;
    private final Sampler sampler;
    private final Scheduler scheduler;
    private final int maxModelLen;
    private final int[] eosTokenIds;
    private final ExecutorService streamExecutor;
    private final Thread loop;

    // Submission side: guarded by submitLock so that nothing is queued after close starts.
    private final Object submitLock = new Object();
    private final ConcurrentLinkedQueue<Command> inbox = new ConcurrentLinkedQueue<>();
    private volatile boolean closing;
    private volatile long closeDeadlineNanos;
    private volatile Throwable loopFailure;
    private final AtomicLong requestCounter = new AtomicLong();
    private final AtomicLong sequenceCounter = new AtomicLong();
    private long seedState;                  // guarded by submitLock

    // Engine loop state.
    private final Set<RequestState> inFlight = Collections.newSetFromMap(new IdentityHashMap<>());
    private final SamplerOutput samplerOutput;
    private final List<Runnable> finished = new ArrayList<>(); // completions of requests ended this iteration
    private long promptTokens;
    private long generationTokens;
    private long prefillTokens;
    private long requestsFinished;
    private long steps;
    private long hostNanos;   // summed over steps: scheduling, bookkeeping and output handling
    private long modelNanos;  // summed over steps: forward and sampling, device waits included
    private volatile EngineMetrics metrics;

    private sealed interface Command permits Submit, Cancel {
    }

    private record Submit(RequestState request) implements Command {
    }

    private record Cancel(RequestState request, String reason) implements Command {
    }

    private Engine(EngineOptions options, ModelConfig config, TextCodec codec, Backend backend, ModelWeights weights,
            LlamaModel model, KvCacheStorage cache, Sampler sampler, Scheduler scheduler, int maxModelLen,
            int[] eosTokenIds) {
        this.options = options;
        this.config = config;
        this.codec = codec;
        this.backend = backend;
        this.weights = weights;
        this.model = model;
        this.cache = cache;
        this.sampler = sampler;
        this.scheduler = scheduler;
        this.maxModelLen = maxModelLen;
        this.eosTokenIds = eosTokenIds;
        this.seedState = options.seed();
        this.samplerOutput = new SamplerOutput(options.maxRunningSeqs());
        this.streamExecutor = Executors.newCachedThreadPool(daemonThreads("kiln-stream-"));
        publishMetrics();
        this.loop = new Thread(this::runLoop, "kiln-engine-loop");
        loop.setDaemon(true);
        loop.start();
    }

    /**
     * Loads the model in {@code modelDir} (config.json, safetensors weights, tokenizer.json if
     * present) onto the backend the options name, sizes the KV cache and starts the engine loop.
     *
     * @throws EngineException naming what is missing or does not fit
     */
    public static Engine create(Path modelDir, EngineOptions options) {
        if (!Files.isDirectory(modelDir)) {
            throw new EngineException("model directory " + modelDir + " does not exist");
        }
        ModelConfig config = ModelConfig.load(modelDir);
        TextCodec codec = TokenizerCodec.loadIfPresent(modelDir);
        return create(modelDir, config, codec, options);
    }

    /** {@link #create(Path, EngineOptions)} with a tokenizer already loaded (null: token ids only). */
    public static Engine create(Path modelDir, Tokenizer tokenizer, EngineOptions options) {
        if (!Files.isDirectory(modelDir)) {
            throw new EngineException("model directory " + modelDir + " does not exist");
        }
        return create(modelDir, ModelConfig.load(modelDir), tokenizer == null ? null : new TokenizerCodec(tokenizer),
                options);
    }

    /** {@link #create(Path, EngineOptions)} with a given (or no) text codec; for tests. */
    static Engine create(Path modelDir, ModelConfig config, TextCodec codec, EngineOptions requested) {
        EngineOptions options = Backends.resolveDevice(requested);
        int maxModelLen = options.maxModelLen() == null ? config.maxPositions() : options.maxModelLen();
        if (maxModelLen > config.maxPositions()) {
            throw new EngineException("maxModelLen " + maxModelLen + " exceeds the model's max_position_embeddings "
                    + config.maxPositions());
        }
        int blockSize = options.blockSize();
        int maxBlocksPerSeq = (maxModelLen + blockSize - 1) / blockSize;
        int maxTokens = options.maxBatchedTokens();
        int maxSeqs = options.maxRunningSeqs();
        long workspace = Backends.workspaceBytes(config, maxTokens, maxSeqs, maxBlocksPerSeq, maxModelLen);
        Backend backend = Backends.open(options, modelDir, workspace);
        ModelWeights weights = null;
        LlamaModel model = null;
        Sampler sampler = null;
        KvCacheStorage cache = null;
        try {
            long freeBefore = backend.freeMemoryBytes();
            try (WeightFiles files = WeightFiles.open(modelDir)) {
                weights = ModelWeights.load(config, files, backend);
            }
            model = new LlamaModel(config, weights, backend, maxTokens, maxSeqs, maxBlocksPerSeq, maxModelLen);
            sampler = new BackendSampler(backend, maxSeqs, config.vocabSize());
            long blockBytes = KvCacheStorage.bytesPerBlock(config.numLayers(), blockSize, config.numKvHeads(),
                    config.headDim(), backend.activationDType());
            long kvBytes;
            if (Backends.isCpu(options)) {
                kvBytes = options.kvCacheBytes();
            } else {
                // The fraction of the memory found free at the start, less what weights and workspace took.
                kvBytes = backend.freeMemoryBytes() - (long) ((1 - options.gpuMemoryUtilization()) * freeBefore);
            }
            long numBlocks = kvBytes / blockBytes;
            if (numBlocks < 2) {
                String where = Backends.isCpu(options) ? ""
                        : String.format(" (%d bytes free after the weights and workspace, less %.0f%% of the %d found"
                                + " free at the start)", backend.freeMemoryBytes(),
                                100 * (1 - options.gpuMemoryUtilization()), freeBefore);
                throw new EngineException(String.format("the KV cache gets %d bytes%s, room for %d blocks of %d tokens"
                        + " (%d bytes each); at least 2 are needed", kvBytes, where, Math.max(0, numBlocks), blockSize,
                        blockBytes));
            }
            // NOTE: more blocks than every running sequence at full length could hold would only
            // serve the prefix cache; capping there bounds the block pool's host memory for small
            // models on large devices.
            numBlocks = Math.min(numBlocks, (long) maxSeqs * maxBlocksPerSeq + 1);
            if (options.maxKvBlocks() != null) {
                numBlocks = Math.min(numBlocks, options.maxKvBlocks());
            }
            cache = new KvCacheStorage(backend, config.numLayers(), (int) numBlocks, blockSize, config.numKvHeads(),
                    config.headDim());
            KvCacheManager kv = new KvCacheManager((int) numBlocks, blockSize, options.prefixCaching());
            LinkedHashSet<Integer> eos = new LinkedHashSet<>(config.eosTokenIds());
            if (codec != null) {
                codec.eosTokenId().ifPresent(eos::add);
            }
            int[] eosIds = eos.stream().mapToInt(Integer::intValue).toArray();
            Scheduler scheduler = new Scheduler(new SchedulerConfig(maxTokens, maxSeqs, maxModelLen), kv, eosIds);
            return new Engine(options, config, codec, backend, weights, model, cache, sampler, scheduler, maxModelLen,
                    eosIds);
        } catch (RuntimeException e) {
            closeQuietly(cache);
            closeQuietly(sampler);
            closeQuietly(model);
            closeQuietly(weights);
            closeQuietly(backend);
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable resource) {
        if (resource != null) {
            try {
                resource.close();
            } catch (Exception ignored) {
                // Already failing; the first error is the one to report.
            }
        }
    }

    public EngineOptions options() {
        return options;
    }

    public ModelConfig modelConfig() {
        return config;
    }

    /** The longest sequence (prompt plus output) served. */
    public int maxModelLen() {
        return maxModelLen;
    }

    /** Usable KV-cache blocks. */
    public int numKvBlocks() {
        return scheduler.kvCache().pool().numUsableBlocks();
    }

    /** End-of-sequence ids (config, generation config and tokenizer). */
    public int[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    /** Whether text prompts, text outputs and stop strings are available (a tokenizer.json was found). */
    public boolean hasTokenizer() {
        return codec != null;
    }

    /** The model's tokenizer, or null when the model directory has none. */
    public Tokenizer tokenizer() {
        return codec instanceof TokenizerCodec t ? t.tokenizer() : null;
    }

    /** The backend's one-line description. */
    public String deviceDescription() {
        return backend.description();
    }

    /** The latest snapshot (refreshed after every step). */
    public EngineMetrics metrics() {
        return metrics;
    }

    /** The backend the steps run on; for tests (the CPU backend's failure hook). */
    Backend backend() {
        return backend;
    }

    /** The scheduler; for tests, and only while nothing is in flight (the engine loop owns it). */
    Scheduler scheduler() {
        return scheduler;
    }

    /**
     * Queues a request and returns at once. Throws {@link IllegalArgumentException} (a {@link
     * ai.kiln.scheduler.RequestRejectedException} for one that can never fit) for a bad request
     * and {@link IllegalStateException} once the engine is closed.
     */
    public RequestHandle submit(GenerateRequest request) {
        checkOpen();
        SamplingParams params = request.params();
        int[] prompt = promptTokens(request);
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("prompt token id " + prompt[i] + " at position " + i
                        + " is outside the vocabulary [0, " + config.vocabSize() + ")");
            }
        }
        int maxTokens = scheduler.admissionCheck(prompt.length, params.maxTokens());
        if (!params.stop().isEmpty() && codec == null) {
            throw new IllegalArgumentException("stop strings need a tokenizer, and this model directory has no tokenizer.json");
        }
        String requestId = request.requestId() != null ? request.requestId() : "req-" + requestCounter.incrementAndGet();
        int n = params.n();
        OutputChannel<RequestOutput> channel = new OutputChannel<>(Math.max(options.streamBufferSize(), n), streamExecutor);
        RequestState state = new RequestState(requestId, params, request.stream(), prompt, n,
                channel, System.nanoTime());
        int[] suppressed = suppressedIds(params);
        long seed;
        synchronized (submitLock) {
            seed = params.seed() != null ? params.seed() : nextSeed();
        }
        for (int i = 0; i < n; i++) {
            // n > 1: seed + index, as vLLM does, so that the completions differ yet repeat.
            SequenceSampling sampling = new SequenceSampling(params, seed + i, suppressed);
            state.seqs[i] = new Sequence(sequenceCounter.incrementAndGet(), requestId, i, prompt, maxTokens,
                    params.stopTokenIds().stream().mapToInt(Integer::intValue).toArray(), sampling,
                    i == 0 ? null : state.seqs[0], state);
            state.completions[i] = state.new Completion(i,
                    codec == null ? null : codec.newDecoder(params.skipSpecialTokens()));
        }
        RequestHandle handle = new RequestHandle(requestId, prompt, state.future, channel,
                () -> enqueue(new Cancel(state, "cancelled by the caller")));
        channel.onSubscriberCancel(() -> enqueue(new Cancel(state, "the stream subscriber cancelled")));
        synchronized (submitLock) {
            checkOpen();
            inbox.add(new Submit(state));
        }
        LockSupport.unpark(loop);
        return handle;
    }

    /** Submits and waits for the whole result. */
    public GenerateResult generate(GenerateRequest request) {
        try {
            return submit(request).result().join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        }
    }

    private int[] promptTokens(GenerateRequest request) {
        if (request.promptTokenIds() != null) {
            return request.promptTokenIds();
        }
        if (codec == null) {
            throw new IllegalArgumentException("text prompts need a tokenizer, and this model directory has no"
                    + " tokenizer.json; pass prompt token ids");
        }
        if (request.prompt() != null) {
            return codec.encode(request.prompt(), true);
        }
        if (!codec.hasChatTemplate()) {
            throw new IllegalArgumentException("the model has no chat template; send a prompt instead of messages");
        }
        // The template writes the special tokens (BOS and the role markers) itself.
        return codec.encode(codec.applyChatTemplate(request.messages(), true), false);
    }

    private int[] suppressedIds(SamplingParams params) {
        LinkedHashSet<Integer> ids = new LinkedHashSet<>(params.stopTokenIds());
        if (!params.ignoreEos()) {
            for (int id : eosTokenIds) {
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** SplitMix64 over the engine seed: the seeds of requests that bring none, in submission order. */
    private long nextSeed() {
        long z = seedState += 0x9e3779b97f4a7c15L;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private void checkOpen() {
        if (loopFailure != null) {
            throw new IllegalStateException("the engine loop failed: " + loopFailure, loopFailure);
        }
        if (closing) {
            throw new IllegalStateException("the engine is closed");
        }
    }

    private void enqueue(Command command) {
        inbox.add(command);
        LockSupport.unpark(loop);
    }

    // ---- engine loop -------------------------------------------------------------------------

    private void runLoop() {
        try {
            while (true) {
                drainInbox();
                if (closing) {
                    if (!scheduler.hasWork()) {
                        break;
                    }
                    if (System.nanoTime() - closeDeadlineNanos >= 0) {
                        abortAll("the engine closed before the request finished (grace period "
                                + options.shutdownGrace() + ")");
                        break;
                    }
                }
                if (!scheduler.hasWork()) {
                    LockSupport.parkNanos(this, closing ? 1_000_000 : 100_000_000);
                    continue;
                }
                step();
            }
            // Nothing can be queued after closing (submitLock); finish whatever came in before.
            drainInbox();
            abortAll("the engine closed before the request started");
        } catch (Throwable e) {
            loopFailure = e;
            failAll(e);
        } finally {
            publishMetrics();
            deliverFinished();
            releaseResources();
        }
    }

    private void drainInbox() {
        Command command;
        boolean any = false;
        while ((command = inbox.poll()) != null) {
            any = true;
            if (command instanceof Submit submit) {
                RequestState state = submit.request();
                inFlight.add(state);
                for (Sequence seq : state.seqs) {
                    scheduler.add(seq);
                }
            } else if (command instanceof Cancel cancel) {
                abort(cancel.request(), cancel.reason());
            }
        }
        if (any) {
            publishMetrics();
            deliverFinished();
        }
    }

    private void step() {
        long stepStart = System.nanoTime();
        StepPlan plan = scheduler.schedule();
        if (plan.isEmpty()) {
            return; // a step that only preempted; the next one admits
        }
        long now = System.nanoTime();
        for (int i = 0; i < plan.numSeqs(); i++) {
            RequestState state = (RequestState) plan.seq(i).owner();
            if (state.firstScheduledNanos < 0) {
                state.firstScheduledNanos = now;
            }
        }
        long modelStart = System.nanoTime();
        try {
            Tensor logits = model.forward(plan.batch(), cache);
            sampler.sample(logits, plan.sampling(), samplerOutput);
        } catch (RuntimeException e) {
            // NOTE: scheduler.update must not run: the step's tokens were never computed.
            failStep(plan, e);
            return;
        }
        long modelEnd = System.nanoTime();
        steps++;
        prefillTokens += plan.numPrefillTokens();
        scheduler.update(plan, samplerOutput);
        processOutputs(plan);
        // NOTE: the model's share includes issuing its ops and waiting for the device (sampling
        // reads the ids back); the rest is Java's own work: planning, bookkeeping, outputs.
        modelNanos += modelEnd - modelStart;
        hostNanos += (modelStart - stepStart) + (System.nanoTime() - modelEnd);
        publishMetrics();
        deliverFinished();
    }

    private void processOutputs(StepPlan plan) {
        long now = System.nanoTime();
        List<RequestState> touched = new ArrayList<>();
        for (int r = 0; r < plan.numSampling(); r++) {
            Sequence seq = plan.samplingSeq(r);
            RequestState state = (RequestState) seq.owner();
            if (state.done) {
                continue;
            }
            RequestState.Completion completion = state.completions[seq.index()];
            if (state.firstTokenNanos < 0) {
                state.firstTokenNanos = now;
                promptTokens += state.promptTokenIds.length;
            }
            generationTokens++;
            String stop = completion.onToken(seq, samplerOutput.logprobs(r));
            if (stop != null && !seq.isFinished()) {
                scheduler.finish(seq, FinishReason.STOP, stop);
            }
            if (state.stream && !state.channel.offer(completion.delta(seq))) {
                abort(state, "the stream subscriber fell behind: " + state.channel.pending()
                        + " outputs undelivered (stream buffer of " + options.streamBufferSize() + ")");
                continue;
            }
            if (completion.finished() && state.completionFinished()) {
                touched.add(state);
            }
        }
        for (RequestState state : touched) {
            finishRequest(state, null);
        }
    }

    /** Ends every unfinished completion of a request and completes it. */
    private void abort(RequestState state, String reason) {
        if (state.done || !inFlight.contains(state)) {
            return;
        }
        for (int i = 0; i < state.seqs.length; i++) {
            scheduler.finish(state.seqs[i], FinishReason.ABORT, reason);
            state.completions[i].abort(reason);
        }
        finishRequest(state, reason);
    }

    /** Ends a request; its future and stream complete at {@link #deliverFinished}, after the metrics show it. */
    private void finishRequest(RequestState state, String abortReason) {
        state.done = true;
        inFlight.remove(state);
        requestsFinished++;
        GenerateResult result = state.result(System.nanoTime());
        if (!state.stream) {
            for (int i = 0; i < state.completions.length; i++) {
                state.channel.offer(state.completions[i].delta(state.seqs[i]));
            }
        }
        finished.add(() -> {
            if (abortReason == null) {
                state.channel.complete();
            } else {
                state.channel.fail(new RequestAbortedException("request " + state.requestId + ": " + abortReason));
            }
            state.future.complete(result);
        });
    }

    private void deliverFinished() {
        for (Runnable r : finished) {
            r.run();
        }
        finished.clear();
    }

    private void abortAll(String reason) {
        for (RequestState state : new ArrayList<>(inFlight)) {
            abort(state, reason);
        }
    }

    /**
     * A step failed: the requests with a sequence in it fail with the cause, and only those. Every
     * sequence of theirs ends (siblings waiting or parked too), so their blocks go back to the pool
     * and nothing is left that the step half computed (its cache slots, blocks past its computed
     * tokens). Requests outside the step go on, and new ones are taken.
     */
    private void failStep(StepPlan plan, RuntimeException cause) {
        EngineException failure = new EngineException("a model step failed: " + cause, cause);
        Set<RequestState> inStep = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < plan.numSeqs(); i++) {
            inStep.add((RequestState) plan.seq(i).owner());
        }
        for (RequestState state : inStep) {
            fail(state, failure);
        }
        publishMetrics();
        deliverFinished();
    }

    /**
     * Ends every sequence of a request and fails it; its future and stream fail at {@link
     * #deliverFinished}, after the metrics show it gone.
     */
    private void fail(RequestState state, EngineException failure) {
        if (state.done || !inFlight.contains(state)) {
            return;
        }
        for (int i = 0; i < state.seqs.length; i++) {
            scheduler.finish(state.seqs[i], FinishReason.ABORT, failure.getMessage());
            state.completions[i].abort(failure.getMessage());
        }
        state.done = true;
        inFlight.remove(state);
        requestsFinished++;
        finished.add(() -> {
            state.channel.fail(failure);
            state.future.completeExceptionally(failure);
        });
    }

    /**
     * The engine loop itself failed (outside a step's model work): every request in flight fails
     * with it, and the engine takes no more. The requests fail first, so that a scheduler left
     * inconsistent by the failure cannot keep their callers waiting.
     */
    private void failAll(Throwable cause) {
        EngineException failure = new EngineException("the engine loop failed: " + cause, cause);
        for (RequestState state : new ArrayList<>(inFlight)) {
            state.done = true;
            inFlight.remove(state);
            requestsFinished++;
            state.channel.fail(failure);
            state.future.completeExceptionally(failure);
        }
        scheduler.finishAll(FinishReason.ABORT, failure.getMessage());
    }

    private void publishMetrics() {
        KvCacheManager kv = scheduler.kvCache();
        metrics = new EngineMetrics(scheduler.numRunning(), scheduler.numWaiting(), kv.usage(),
                kv.pool().numUsableBlocks(), kv.blockSize(), kv.prefixCacheQueries(), kv.prefixCacheHits(), promptTokens,
                generationTokens, prefillTokens, scheduler.numPreemptions(), requestsFinished, steps, hostNanos,
                modelNanos);
    }

    private void releaseResources() {
        closeQuietly(cache);
        closeQuietly(sampler);
        closeQuietly(model);
        closeQuietly(weights);
        closeQuietly(backend);
        streamExecutor.shutdown();
    }

    /**
     * Stops taking requests, lets those in flight finish within {@link EngineOptions#shutdownGrace()},
     * aborts the rest (their streams fail with a {@link RequestAbortedException} saying so), then
     * frees the model and the cache. Idempotent.
     */
    @Override
    public void close() {
        synchronized (submitLock) {
            if (!closing) {
                closeDeadlineNanos = System.nanoTime() + options.shutdownGrace().toNanos();
                closing = true;
            }
        }
        LockSupport.unpark(loop);
        boolean interrupted = false;
        while (loop.isAlive()) {
            try {
                loop.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static ThreadFactory daemonThreads(String prefix) {
        AtomicInteger count = new AtomicInteger();
        return runnable -> {
            Thread thread = new Thread(runnable, prefix + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        };
    }
}
