package ai.kiln.api;

import ai.kiln.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;

/**
 * The inference engine a Java service links: load a model once, then submit requests from any
 * number of threads. One engine loop runs the steps: it takes new requests and cancels, batches
 * what is running, runs the model, samples, and hands each request's new tokens and text to its
 * {@link RequestHandle}.
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
 * Every method is safe to call from any thread.
 */
public interface Engine extends AutoCloseable {

    /**
     * Loads the model in {@code modelDir} (config.json, safetensors weights, tokenizer.json if
     * present) onto the device the options name, sizes the KV cache and starts the engine loop.
     *
     * @throws EngineException naming what is missing or does not fit
     */
    static Engine create(Path modelDir, EngineOptions options) {
        return EngineProviders.installed().create(modelDir, options);
    }

    /**
     * Loads {@code model}: a model directory, or (where no such path exists) a Hugging Face Hub id
     * {@code ORG/NAME} at revision main, as {@code vllm serve ORG/NAME} takes it. See {@link
     * #create(String, String, EngineOptions)}.
     */
    static Engine create(String model, EngineOptions options) {
        return EngineProviders.installed().create(model, null, options);
    }

    /**
     * Loads {@code model}, a directory or a Hub id {@code ORG/NAME} at {@code revision} (a branch,
     * tag or commit; null: main). A Hub model is taken from the Hugging Face cache as huggingface_hub
     * lays it out (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) with no network,
     * else downloaded into it from HF_ENDPOINT with HF_TOKEN, with its progress on stderr; with
     * HF_HUB_OFFLINE=1 the cache alone. The engine is named by the Hub id. An {@code http(s)://}
     * URL is a model directory on a file server with its kiln-manifest.json (revision unused),
     * taken from Kiln's cache (KILN_CACHE/models, else ~/.cache/kiln/models) or downloaded into it,
     * and named by the URL's last path segment.
     *
     * @throws EngineException naming what is missing, not allowed or does not fit
     */
    static Engine create(String model, String revision, EngineOptions options) {
        return EngineProviders.installed().create(model, revision, options);
    }

    /** {@link #create(Path, EngineOptions)} with a tokenizer already loaded (null: token ids only). */
    static Engine create(Path modelDir, Tokenizer tokenizer, EngineOptions options) {
        return EngineProviders.installed().create(modelDir, tokenizer, options);
    }

    /** The options in effect (with the device {@code auto} resolved). */
    EngineOptions options();

    /** The model directory's name, or the Hub id it was created from, as the server reports it. */
    String modelName();

    /** Token ids run from 0 to this (exclusive). */
    int vocabSize();

    /** The longest sequence (prompt plus output) served. */
    int maxModelLen();

    /** Usable KV-cache blocks. */
    int numKvBlocks();

    /** End-of-sequence ids (config, generation config and tokenizer). */
    int[] eosTokenIds();

    /** Whether text prompts, text outputs and stop strings are available (a tokenizer.json was found). */
    boolean hasTokenizer();

    /** The model's tokenizer, or null when the model directory has none. */
    Tokenizer tokenizer();

    /** The device's one-line description. */
    String deviceDescription();

    /** The latest snapshot (refreshed after every step). */
    EngineMetrics metrics();

    /**
     * Queues a request and returns at once. Throws {@link IllegalArgumentException} (a {@link
     * RequestRejectedException} for one that can never fit) for a bad request and {@link
     * IllegalStateException} once the engine is closed.
     */
    RequestHandle submit(GenerateRequest request);

    /**
     * Submits and waits for the whole result. A thread interrupted while it waits cancels the
     * request and gets a {@link RequestAbortedException} (its interrupt flag set again).
     */
    default GenerateResult generate(GenerateRequest request) {
        RequestHandle handle = submit(request);
        try {
            return handle.result().get();
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
            throw new RequestAbortedException("request " + handle.requestId() + ": the waiting thread was interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new EngineException("request " + handle.requestId() + " failed: " + e.getCause(), e.getCause());
        }
    }

    /**
     * Stops taking requests, lets those in flight finish within {@link EngineOptions#shutdownGrace()},
     * aborts the rest (their streams fail with a {@link RequestAbortedException} saying so), then
     * frees the model and the cache. Idempotent.
     */
    @Override
    void close();
}
