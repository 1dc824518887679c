package ai.kiln.engine;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.RequestRejectedException;
import ai.kiln.api.SamplingParams;
import ai.kiln.backend.Backend;
import ai.kiln.grammar.CompiledGrammar;
import ai.kiln.grammar.TokenVocabulary;
import ai.kiln.hub.LocatedModel;
import ai.kiln.model.ModelConfig;
import ai.kiln.sampling.LogitBias;
import ai.kiln.sampling.SamplerSettings;
import ai.kiln.sampling.SequenceSampling;
import ai.kiln.scheduler.AdmissionException;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.scheduler.Sequence;
import ai.kiln.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.LinkedHashSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The engine in this process: {@link EngineLoader} puts the model on its device, the
 * {@link StepLoop} runs the steps, and this class takes submissions. {@link #submit} runs on the
 * caller's thread: it tokenizes, checks that the request can ever run, builds the request's
 * sequences and output stream, and queues it for the loop.
 */
public final class LocalEngine implements Engine {

    private final EngineOptions options;
    private final String modelName;
    private final ModelConfig config;
    private final TextCodec codec;          // null: token ids only
    private final LoadedModel loaded;
    private final ExecutorService streamExecutor;
    private final StepLoop loop;
    private final GrammarCache grammars; // null: token ids only (no tokenizer)

    // Submission side: guarded by submitLock so that nothing is queued after close starts.
    private final Object submitLock = new Object();
    private boolean closing;
    private long seedState;
    private final AtomicLong requestCounter = new AtomicLong();
    private final AtomicLong sequenceCounter = new AtomicLong();

    private LocalEngine(String modelName, TextCodec codec, LoadedModel loaded) {
        this.options = loaded.options();
        this.modelName = modelName;
        this.config = loaded.config();
        this.codec = codec;
        this.loaded = loaded;
        this.grammars = codec == null ? null : new GrammarCache(this::tokenVocabulary);
        this.seedState = options.seed() != null ? options.seed() : new SecureRandom().nextLong();
        this.streamExecutor = Executors.newCachedThreadPool(daemonThreads("kiln-stream-"));
        // NOTE: the stream executor is never shut down: a handle may still be read (or subscribed
        // to) after the engine closed, and its threads are daemons that end when idle for a minute.
        this.loop = new StepLoop(loaded, loaded::close);
        loop.start();
    }

    /** See {@link Engine#create(Path, EngineOptions)}. */
    public static LocalEngine create(Path modelDir, EngineOptions options) {
        checkDirectory(modelDir);
        return create(modelDir, ModelConfig.load(modelDir), TokenizerCodec.loadIfPresent(modelDir), options);
    }

    /** A model a {@link ai.kiln.hub.ModelLocator} found, served under its name (the Hub id for a Hub model). */
    public static LocalEngine create(LocatedModel model, EngineOptions options) {
        Path modelDir = model.directory();
        checkDirectory(modelDir);
        return create(modelDir, model.name(), ModelConfig.load(modelDir), TokenizerCodec.loadIfPresent(modelDir),
                options);
    }

    /** See {@link Engine#create(Path, Tokenizer, EngineOptions)}. */
    public static LocalEngine create(Path modelDir, Tokenizer tokenizer, EngineOptions options) {
        checkDirectory(modelDir);
        return create(modelDir, ModelConfig.load(modelDir), tokenizer == null ? null : new TokenizerCodec(tokenizer),
                options);
    }

    /** With a given (or no) text codec; for tests. */
    static LocalEngine create(Path modelDir, ModelConfig config, TextCodec codec, EngineOptions options) {
        return create(modelDir, LocatedModel.ofDirectory(modelDir).name(), config, codec, options);
    }

    private static LocalEngine create(Path modelDir, String name, ModelConfig config, TextCodec codec,
            EngineOptions options) {
        return new LocalEngine(name, codec, EngineLoader.load(modelDir, config, codec, options));
    }

    private static void checkDirectory(Path modelDir) {
        if (!Files.isDirectory(modelDir)) {
            throw new EngineException("model directory " + modelDir + " does not exist");
        }
    }

    @Override
    public EngineOptions options() {
        return options;
    }

    @Override
    public String modelName() {
        return modelName;
    }

    /** The model's configuration (config.json as read). */
    public ModelConfig modelConfig() {
        return config;
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public int maxModelLen() {
        return loaded.maxModelLen();
    }

    @Override
    public int numKvBlocks() {
        return loaded.scheduler().kvCache().pool().numUsableBlocks();
    }

    @Override
    public int[] eosTokenIds() {
        return loaded.eosTokenIds().clone();
    }

    @Override
    public boolean hasTokenizer() {
        return codec != null;
    }

    @Override
    public Tokenizer tokenizer() {
        return codec instanceof TokenizerCodec t ? t.tokenizer() : null;
    }

    @Override
    public String deviceDescription() {
        return loaded.backend().description();
    }

    @Override
    public EngineMetrics metrics() {
        return loop.metrics();
    }

    /** The backend the steps run on; for tests (the CPU backend's failure hook). */
    Backend backend() {
        return loaded.backend();
    }

    /** The scheduler; for tests, and only while nothing is in flight (the engine loop owns it). */
    Scheduler scheduler() {
        return loaded.scheduler();
    }

    /** The compiled structured-output grammars; for tests. */
    GrammarCache grammars() {
        return grammars;
    }

    @Override
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
        int maxTokens;
        try {
            maxTokens = loaded.scheduler().admissionCheck(prompt.length, params.maxTokens());
        } catch (AdmissionException e) {
            throw new RequestRejectedException(e.getMessage());
        }
        if (!params.stop().isEmpty() && codec == null) {
            throw new IllegalArgumentException("stop strings need a tokenizer, and this model directory has no tokenizer.json");
        }
        for (int id : params.logitBias().keySet()) {
            if (id >= config.vocabSize()) {
                throw new IllegalArgumentException("logit_bias token id " + id + " is outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
        }
        LogitBias logitBias = ApiMapping.logitBias(params);
        CompiledGrammar grammar = null;
        if (params.structuredOutput() != null) {
            if (grammars == null) {
                throw new IllegalArgumentException("structured output needs a tokenizer, and this model directory has"
                        + " no tokenizer.json");
            }
            grammar = grammars.get(params.structuredOutput());
        }
        String requestId = request.requestId() != null ? request.requestId() : "req-" + requestCounter.incrementAndGet();
        int n = params.n();
        RequestState state = new RequestState(requestId, params, prompt, n, System.nanoTime());
        OutputChannel<RequestOutput> channel = new OutputChannel<>(Math.max(options.streamBufferSize(), n), streamExecutor);
        state.stream = new RequestStream(requestId, prompt, n, request.stream(), channel, streamExecutor,
                () -> loop.cancel(state, "cancelled by the caller"));
        channel.onSubscriberCancel(() -> loop.cancel(state, "the stream subscriber cancelled"));
        SamplerSettings settings = ApiMapping.samplerSettings(params);
        int[] suppressed = suppressedIds(params);
        int[] stopIds = params.stopTokenIds().stream().mapToInt(Integer::intValue).toArray();
        long seed;
        synchronized (submitLock) {
            seed = params.seed() != null ? params.seed() : nextSeed();
        }
        for (int i = 0; i < n; i++) {
            // n > 1: seed + index, as vLLM does, so that the completions differ yet repeat.
            // NOTE: with ignore_eos an end-of-sequence id would not end the output, so the grammar never allows one.
            SequenceSampling sampling = new SequenceSampling(settings, seed + i, suppressed,
                    grammar == null ? null : grammar.newMatcher(!params.ignoreEos()), logitBias);
            state.seqs[i] = new Sequence(sequenceCounter.incrementAndGet(), requestId, i, prompt, maxTokens, stopIds,
                    sampling, i == 0 ? null : state.seqs[0], state);
            state.completions[i] = state.new Completion(i,
                    codec == null ? null : codec.newDecoder(params.skipSpecialTokens()));
        }
        synchronized (submitLock) {
            checkOpen();
            if (!loop.submit(state)) {
                checkOpen();
                throw new IllegalStateException("the engine is closed");
            }
        }
        return state.stream;
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
        return codec.encode(codec.applyChatTemplate(request.messages(), true, request.templateVariables()), false);
    }

    /** The model's ids as the bytes they stand for; special tokens and ids past the tokenizer's have none. */
    private TokenVocabulary tokenVocabulary() {
        int size = config.vocabSize();
        byte[][] bytes = new byte[size][];
        for (int id = 0; id < size; id++) {
            bytes[id] = id < codec.vocabSize() && !codec.isSpecialToken(id) ? codec.tokenBytes(id) : null;
        }
        return new TokenVocabulary(bytes, loaded.eosTokenIds());
    }

    private int[] suppressedIds(SamplingParams params) {
        LinkedHashSet<Integer> ids = new LinkedHashSet<>(params.stopTokenIds());
        if (!params.ignoreEos()) {
            for (int id : loaded.eosTokenIds()) {
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
        Throwable failure = loop.failure();
        if (failure != null) {
            throw new IllegalStateException("the engine loop failed: " + failure, failure);
        }
        synchronized (submitLock) {
            if (closing) {
                throw new IllegalStateException("the engine is closed");
            }
        }
    }

    @Override
    public void close() {
        synchronized (submitLock) {
            closing = true;
        }
        loop.closeAndJoin();
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
