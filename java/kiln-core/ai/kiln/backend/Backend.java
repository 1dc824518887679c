package ai.kiln.backend;

import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;

/**
 * The ops a model runs, on tensors that live in the backend's memory. The model definition is
 * written once over this interface; the CPU backend (native C++) and the CUDA backend implement
 * it, so every GPU op has a CPU twin to be checked against.
 *
 * <p>Memory is owned by Java: the backend allocates it when asked and frees it on {@link
 * #free} or {@link #close}. Ops are issued in order on the backend's single stream; {@link
 * #copyToHost} waits for the ops before it. Ops check shapes and dtypes and throw {@link
 * BackendException} naming the problem; native code refuses out-of-range indices.
 */
public interface Backend extends AutoCloseable {

    /** "cpu" or "cuda". */
    String name();

    /** A line for logs: device, threads, memory. */
    String description();

    /**
     * The compiled-artifact target this backend runs ("cpu", "cuda-sm80", "cuda-sm90"): an artifact
     * compiled for another one is refused at load.
     */
    String artifactTarget();

    /** The element type of activations, the KV cache and logits on this backend. */
    DType activationDType();

    /** The element type of logits (the LM head's GEMM output); F32 on every backend. */
    default DType logitsDType() {
        return DType.F32;
    }

    /** The element type weights of the given stored type are kept in on this backend. */
    DType weightDType(DType stored);

    // ---- memory ----------------------------------------------------------------------------------

    /** Uninitialised memory for a contiguous tensor. */
    Tensor allocate(DType dtype, long... shape);

    /** Frees memory returned by {@link #allocate}. */
    void free(Tensor tensor);

    /** Bytes of device memory free for allocation now (host backends: a configured budget). */
    long freeMemoryBytes();

    /** Bytes of device memory in all (host backends: the configured budget). */
    long totalMemoryBytes();

    /**
     * Copies {@code source}, a contiguous tensor in host memory (e.g. a mapped weights file),
     * into {@code destination}, converting the element type if they differ.
     */
    void upload(Tensor destination, Tensor hostSource);

    /** Copies {@code count} ints into an I32 tensor. */
    void copyFromHost(Tensor destination, int[] values, int count);

    /** Copies the first {@code count} elements of an F32/I32 tensor to the host, after pending ops. */
    void copyToHost(Tensor source, float[] destination, int count);

    void copyToHost(Tensor source, int[] destination, int count);

    /** Waits for every op issued so far. */
    void synchronize();

    // ---- layer ops ---------------------------------------------------------------------------

    /** out[t] = table[ids[t]]. out: [T, H] activations; table: [V, H]; ids: [T] I32. */
    void embedding(Tensor out, Tensor table, Tensor ids);

    /**
     * RMSNorm over the last dimension of 2-D tensors [rows, dim]. With a residual: residual += x,
     * then out = norm(residual) * weight; without: out = norm(x) * weight. out may be x.
     */
    void rmsNorm(Tensor out, Tensor x, Tensor residual, Tensor weight, float eps);

    /** In-place RMSNorm of every head: x [T, heads, headDim] (token rows may be strided). */
    void headRmsNorm(Tensor x, Tensor weight, float eps);

    /**
     * Rotary embedding in place. q: [T, Hq, D], k: [T, Hk, D] (token rows may be strided),
     * positions: [T] I32, cosSin: [maxPosition, D] F32 (cos of the D/2 frequencies, then sin).
     */
    void rotary(Tensor q, Tensor k, Tensor positions, Tensor cosSin, boolean neoxStyle);

    /**
     * out = x @ w^T (+ bias). out: [M, N] activations (or {@link #logitsDType()} for the LM head);
     * x: [M, K]; w: [N, K]; bias: [N] or null.
     */
    void gemm(Tensor out, Tensor x, Tensor w, Tensor bias);

    /**
     * {@link #gemm} over weights quantised per row (see {@link #quantizeRows}): out = (x @ w^T) *
     * wScales (+ bias), w: [N, K] I8, wScales: [N] F32; with wScales null, w is a float weight and
     * this is {@link #gemm}.
     */
    default void gemm(Tensor out, Tensor x, Tensor w, Tensor wScales, Tensor bias) {
        if (wScales != null) {
            throw new BackendException("the " + name() + " backend has no " + w.dtype() + " weights");
        }
        gemm(out, x, w, bias);
    }

    /**
     * {@link #gemm} over FP8 weights: w [N, K] F8_E4M3 with wScales [N] F32, the inputs x quantised
     * to e4m3 as {@code inputs} says (see {@link InputQuantization}), fp32 accumulation; for any
     * other weights (inputs null) this is the quantised {@link #gemm}. The exact semantics are
     * kiln_cpu_gemm_f8's in native/include/kiln_cpu.h.
     */
    default void gemm(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs, Tensor bias) {
        if (inputs != null) {
            throw new BackendException("the " + name() + " backend has no FP8 GEMM (for " + w + ")");
        }
        gemm(out, x, w, wScales, bias);
    }

    /** {@link #gemmSiluAndMul} over FP8 weights whose inputs are quantised as {@code inputs} (see the FP8 {@link #gemm}). */
    default void gemmSiluAndMul(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs,
            Tensor gateUp) {
        if (inputs == null) {
            gemmSiluAndMul(out, x, w, wScales, gateUp);
            return;
        }
        gemm(gateUp, x, w, wScales, inputs, null);
        siluAndMul(out, gateUp);
    }

    /**
     * Whether {@link #quantizeRows} and the quantised {@link #gemm} take weights of this type
     * (the CPU backend: I8 and F8_E4M3).
     */
    default boolean supportsQuantizedWeights(DType dtype) {
        return false;
    }

    /**
     * Quantises a host matrix [N, K] (F32, F16 or BF16) row by row into destination [N, K] of a
     * type {@link #supportsQuantizedWeights} accepts, with scales [N] F32: symmetric, each row's
     * largest magnitude mapped to the type's largest value (I8: 127, rounded to the nearest integer;
     * F8_E4M3: 448, rounded to the nearest e4m3 value, ties to even).
     */
    default void quantizeRows(Tensor destination, Tensor scales, Tensor hostSource) {
        throw new BackendException("the " + name() + " backend does not quantise weights to " + destination.dtype());
    }

    /** out = silu(gateUp[:, :I]) * gateUp[:, I:]. out: [T, I]; gateUp: [T, 2I]. */
    void siluAndMul(Tensor out, Tensor gateUp);

    /**
     * Writes K and V of each token into its cache slot (slot -1: padding, skipped).
     * k, v: [T, Hk, D]; kCache, vCache: [numBlocks, blockSize, Hk, D]; slotMapping: [T] I32.
     */
    void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping);

    /**
     * Causal attention of a packed batch over the paged cache (see {@link AttentionMetadata}).
     * out, q: [T, Hq, D]; kCache, vCache: [numBlocks, blockSize, Hk, D].
     */
    void attention(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata,
            float scale);

    /**
     * Whether this backend keeps a KV cache of {@code dtype} for heads of {@code headDim}: its
     * activation type always, {@link DType#F8_E4M3} where it overrides the ops below that take
     * {@link KvCacheScales} (and, on the CUDA backend, for the head sizes its kernels cover).
     */
    default boolean supportsKvCacheDType(DType dtype, int headDim) {
        return dtype == activationDType();
    }

    /**
     * {@link #writeKvCache} into a cache of any type this backend keeps: an FP8 (F8_E4M3) one stores
     * each (token, KV head) row as e4m3 codes with a scale of its own in {@code scales} (see {@link
     * KvCacheScales}; null for a cache of the activation type).
     */
    default void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping,
            KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            writeKvCache(k, v, kCache, vCache, slotMapping);
            return;
        }
        throw new BackendException(getClass().getSimpleName() + " keeps no FP8 KV cache");
    }

    /** {@link #attention} over a cache of any type this backend keeps (an FP8 one's values are code x row scale). */
    default void attention(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata,
            float scale, KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            attention(out, q, kCache, vCache, metadata, scale);
            return;
        }
        throw new BackendException(getClass().getSimpleName() + " keeps no FP8 KV cache");
    }

    // ---- fused ops: each is the composition of the ops above, which backends may run as one ----

    /**
     * {@link #rotary} of q and k, then {@link #writeKvCache} of the rotated k and of v. Afterwards
     * q is rotated in place; k's own contents are unspecified (rotated or not), only its cache copy
     * counts.
     */
    default void rotaryWriteKvCache(Tensor q, Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor positions,
            Tensor slotMapping, Tensor cosSin, boolean neoxStyle) {
        rotary(q, k, positions, cosSin, neoxStyle);
        writeKvCache(k, v, kCache, vCache, slotMapping);
    }

    /** {@link #rotaryWriteKvCache} into a cache of any type this backend keeps (see {@link #writeKvCache(Tensor, Tensor, Tensor, Tensor, Tensor, KvCacheScales)}). */
    default void rotaryWriteKvCache(Tensor q, Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor positions,
            Tensor slotMapping, Tensor cosSin, boolean neoxStyle, KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            rotaryWriteKvCache(q, k, v, kCache, vCache, positions, slotMapping, cosSin, neoxStyle);
            return;
        }
        rotary(q, k, positions, cosSin, neoxStyle);
        writeKvCache(k, v, kCache, vCache, slotMapping, scales);
    }

    /**
     * An MLP's gate/up projection and its SiLU product: {@link #gemm} of x [T, H] by w [2I, H] (the
     * gate rows, then the up rows) into gateUp [T, 2I], then {@link #siluAndMul} into out [T, I].
     * A backend that fuses the two may leave gateUp untouched.
     */
    default void gemmSiluAndMul(Tensor out, Tensor x, Tensor w, Tensor gateUp) {
        gemm(gateUp, x, w, null);
        siluAndMul(out, gateUp);
    }

    /** {@link #gemmSiluAndMul} over weights quantised per row, scales wScales [2I] (see the quantised {@link #gemm}). */
    default void gemmSiluAndMul(Tensor out, Tensor x, Tensor w, Tensor wScales, Tensor gateUp) {
        if (wScales == null) {
            gemmSiluAndMul(out, x, w, gateUp);
            return;
        }
        gemm(gateUp, x, w, wScales, null);
        siluAndMul(out, gateUp);
    }

    /**
     * Sizes what attention needs for every step up to these limits, so that later steps (and
     * graph replays) never allocate. The default needs nothing.
     */
    default void reserveAttention(int maxSeqs, int numQHeads, int numKvHeads, int headDim, int maxSeqLen) {
    }

    /** out[i] = in[rows[i]]. out: [R, H]; in: [T, H]; rows: [R] I32. */
    void gatherRows(Tensor out, Tensor in, Tensor rows);

    /**
     * Greedy choice per row of logits [B, V]: ids [B] I32 get the argmax, logprobs [B] F32 (or
     * null) its log-probability.
     */
    void argmax(Tensor logits, Tensor ids, Tensor logprobs);

    /**
     * Chooses one token per row of logits [B, V] F32 by the sampling contract (docs/sampling.md):
     * penalties and the min-tokens mask, then the argmax or temperature, min-p, top-k, top-p and a
     * draw from the row's random bits; log-probabilities of the raw logits. The logits are not
     * changed.
     *
     * @param rows      [>= B, {@link SampleWords#ROW_WORDS}] I32, each row's parameters
     * @param penalties [P, V] I32 penalty table, or null when no row names one; a row naming one of
     *                  its rows reads it and then has its chosen id counted there (rows name distinct ones)
     * @param ids       [>= B] I32, the chosen ids
     * @param logprobs  [>= B, {@link SampleWords#LOGPROB_WORDS}] I32, or null when no row asks
     */
    void sample(Tensor logits, Tensor rows, Tensor penalties, Tensor ids, Tensor logprobs);

    /**
     * Sets row {@code row} of a penalty table [P, V] I32 from ids [>= n] I32 (each in [0, V)):
     * the first {@code numPrompt} are the prompt, the next {@code numOutput} the output so far
     * (counted), the next {@code numSuppressed} the ids that min_tokens masks.
     */
    void resetPenaltyRow(Tensor penalties, int row, Tensor ids, int numPrompt, int numOutput, int numSuppressed);

    /**
     * Starts (true) or stops (false) the device profiler's collection, so that a profiler started
     * with collection off records only the steps between (no-op where there is none).
     */
    default void setProfilerCollecting(boolean collecting) {
    }

    // ---- graphs ------------------------------------------------------------------------------

    /** Whether this backend can record a sequence of ops once and replay it (CUDA graphs). */
    default boolean supportsGraphs() {
        return false;
    }

    /**
     * Starts recording the ops this thread issues instead of running them. Nothing may allocate,
     * copy from the host or synchronise until {@link #endCapture()}.
     */
    default void beginCapture() {
        throw new BackendException(name() + " backend does not record graphs");
    }

    /** Ends recording and returns a handle that {@link #replay} runs. */
    default long endCapture() {
        throw new BackendException(name() + " backend does not record graphs");
    }

    /** Runs a recorded graph on the backend's stream, over the same memory it was recorded with. */
    default void replay(long graph) {
        throw new BackendException(name() + " backend does not record graphs");
    }

    default void releaseGraph(long graph) {
    }

    // ---- structured output and logit bias ----------------------------------------------------

    /**
     * Sets logits[rows[m], v] to -inf for every id v whose bit is clear in row m of the masks (bit
     * v % 32 of word v / 32), for m in [0, numRows): the ids a sequence's grammar forbids then get
     * probability 0 in {@link #argmax} and {@link #sample} alike (docs/sampling.md, "Token masks").
     *
     * @param logits [B, V] F32, contiguous, changed in place
     * @param masks  [>= numRows, ceil(V / 32)] I32 bit masks
     * @param rows   [>= numRows] I32, the logits row of each mask, each in [0, B)
     */
    void maskLogits(Tensor logits, Tensor masks, Tensor rows, int numRows);

    /**
     * logits[row, id] += bias for each entry (row, id, bias as float bits) of the first {@code
     * count}: OpenAI's logit_bias, before {@link #maskLogits}, {@link #argmax} and {@link #sample}.
     *
     * @param logits  [B, V] F32, contiguous, changed in place
     * @param entries [>= count, 3] I32: row in [0, B), id in [0, V), bias bits; distinct (row, id) pairs
     */
    void addLogitBias(Tensor logits, Tensor entries, int count);

    @Override
    void close();
}
