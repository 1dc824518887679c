package ai.kiln.backend.cpu;

import static ai.kiln.backend.TensorChecks.requireContiguous;

import ai.kiln.backend.AttentionMetadata;
import ai.kiln.backend.Backend;
import ai.kiln.backend.BackendException;
import ai.kiln.backend.InputQuantization;
import ai.kiln.backend.KvCacheScales;
import ai.kiln.backend.OpShapes;
import ai.kiln.backend.TensorChecks;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The CPU backend: ops in native C++ (libkiln_cpu, OpenMP), fp32 activations, weights kept in
 * their stored type (fp32, fp16 or bf16, or int8 with a scale per row when quantised) and widened
 * inside the GEMM, whose kernels are the widest the CPU runs (AVX-512, AVX2 or SSE2). Ops run
 * synchronously on the calling thread.
 */
public final class CpuBackend implements Backend {

    /** The type float weights are kept as; null: as stored. */
    private final DType floatWeights;

    private final Map<Long, Long> allocations = new HashMap<>(); // address -> bytes
    private final long memoryBudgetBytes;
    private long allocatedBytes;
    private boolean closed;
    private final AtomicInteger gemmFailuresToInject = new AtomicInteger(); // test hook, see failNextGemms

    /**
     * @param numThreads        threads for the ops (0: one per core this JVM may use); the setting
     *                          is the process's, so the last backend made sets it for all
     * @param memoryBudgetBytes the most memory this backend hands out, weights and KV cache included
     */
    public CpuBackend(int numThreads, long memoryBudgetBytes) {
        this(numThreads, memoryBudgetBytes, null);
    }

    /**
     * A backend that keeps float weights as {@code floatWeights} (null: as stored), e.g. in the
     * layout of a GPU target when a model is compiled for it on a machine without one.
     */
    public CpuBackend(int numThreads, long memoryBudgetBytes, DType floatWeights) {
        if (floatWeights != null && !floatWeights.isFloat()) {
            throw new IllegalArgumentException("float weights must be kept as a float type, got " + floatWeights);
        }
        this.floatWeights = floatWeights;
        if (numThreads < 0) {
            throw new IllegalArgumentException("numThreads must be >= 0, got " + numThreads);
        }
        if (memoryBudgetBytes <= 0) {
            throw new IllegalArgumentException("memoryBudgetBytes must be > 0, got " + memoryBudgetBytes);
        }
        KilnCpu.ensureLoaded();
        // NOTE: the cores this JVM may use (its CPU quota and affinity), which OpenMP's own count
        // (every processor of the machine) overstates in a container.
        KilnCpu.kiln_cpu_set_num_threads(numThreads > 0 ? numThreads : Runtime.getRuntime().availableProcessors());
        this.memoryBudgetBytes = memoryBudgetBytes;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String artifactTarget() {
        return "cpu";
    }

    @Override
    public String description() {
        return "cpu (" + KilnCpu.kiln_cpu_get_num_threads() + " threads, " + KilnCpu.kiln_cpu_gemm_kernels()
                + " kernels, fp32 activations)";
    }

    @Override
    public DType activationDType() {
        return DType.F32;
    }

    @Override
    public DType weightDType(DType stored) {
        return floatWeights != null && stored.isFloat() ? floatWeights : stored;
    }

    // ---- memory ------------------------------------------------------------------------------

    @Override
    public synchronized Tensor allocate(DType dtype, long... shape) {
        ensureOpen();
        Tensor probe = Tensor.of(0, dtype, shape);
        long bytes = Math.max(64, Math.multiplyExact(probe.numel(), (long) dtype.bytes));
        if (allocatedBytes + bytes > memoryBudgetBytes) {
            throw new BackendException(String.format(
                    "out of memory on the CPU backend: %s %s needs %d bytes, %d of the %d-byte budget are free",
                    dtype, Arrays.toString(shape), bytes, memoryBudgetBytes - allocatedBytes, memoryBudgetBytes));
        }
        long address = KilnCpu.kiln_cpu_alloc(bytes);
        if (address == 0) {
            throw new BackendException(KilnCpu.kiln_last_error());
        }
        allocations.put(address, bytes);
        allocatedBytes += bytes;
        return Tensor.of(address, dtype, shape);
    }

    @Override
    public synchronized void free(Tensor tensor) {
        Long bytes = allocations.remove(tensor.address());
        if (bytes == null) {
            throw new BackendException("free of memory this backend did not allocate: " + tensor);
        }
        allocatedBytes -= bytes;
        KilnCpu.kiln_cpu_free(tensor.address());
    }

    @Override
    public synchronized long freeMemoryBytes() {
        return memoryBudgetBytes - allocatedBytes;
    }

    @Override
    public long totalMemoryBytes() {
        return memoryBudgetBytes;
    }

    @Override
    public void upload(Tensor destination, Tensor hostSource) {
        requireContiguous(destination, "upload destination");
        requireContiguous(hostSource, "upload source");
        if (destination.numel() != hostSource.numel()) {
            throw new BackendException("upload of " + hostSource + " into " + destination + ": sizes differ");
        }
        if (destination.dtype() == hostSource.dtype() && !destination.dtype().isFloat()) {
            check(KilnCpu.kiln_cpu_copy(destination.address(), hostSource.address(),
                    hostSource.numel() * hostSource.dtype().bytes));
            return;
        }
        check(KilnCpu.kiln_cpu_convert(destination.address(), destination.dtype().code, hostSource.address(),
                hostSource.dtype().code, hostSource.numel()));
    }

    @Override
    public void copyFromHost(Tensor destination, int[] values, int count) {
        requireDType(destination, DType.I32, "copyFromHost destination");
        if (count < 0 || count > values.length || count > destination.numel()) {
            throw new BackendException("copyFromHost of " + count + " ints into " + destination);
        }
        check(KilnCpu.kiln_cpu_copy(destination.address(), values, 4L * count));
    }

    @Override
    public void copyToHost(Tensor source, float[] destination, int count) {
        requireDType(source, DType.F32, "copyToHost source");
        if (count < 0 || count > destination.length || count > source.numel()) {
            throw new BackendException("copyToHost of " + count + " floats from " + source);
        }
        requireContiguous(source, "copyToHost source");
        check(KilnCpu.kiln_cpu_copy(destination, source.address(), 4L * count));
    }

    @Override
    public void copyToHost(Tensor source, int[] destination, int count) {
        requireDType(source, DType.I32, "copyToHost source");
        if (count < 0 || count > destination.length || count > source.numel()) {
            throw new BackendException("copyToHost of " + count + " ints from " + source);
        }
        requireContiguous(source, "copyToHost source");
        check(KilnCpu.kiln_cpu_copy(destination, source.address(), 4L * count));
    }

    @Override
    public void synchronize() {
        // Ops are synchronous.
    }

    // ---- ops ---------------------------------------------------------------------------------

    @Override
    public void embedding(Tensor out, Tensor table, Tensor ids) {
        requireActivation(out, "embedding out");
        requireDType(ids, DType.I32, "embedding ids");
        OpShapes.embedding(out, table, ids);
        check(KilnCpu.kiln_cpu_embedding(out.address(), table.address(), table.dtype().code, ids.address(),
                ids.numel(), table.size(1), table.size(0)));
    }

    @Override
    public void rmsNorm(Tensor out, Tensor x, Tensor residual, Tensor weight, float eps) {
        requireActivation(out, "rmsNorm out");
        requireActivation(x, "rmsNorm x");
        OpShapes.rmsNorm(out, x, residual, weight);
        if (residual != null) {
            requireActivation(residual, "rmsNorm residual");
        }
        check(KilnCpu.kiln_cpu_rms_norm(out.address(), out.rowStride(), x.address(), x.rowStride(),
                residual == null ? 0 : residual.address(), residual == null ? 0 : residual.rowStride(),
                weight.address(), weight.dtype().code, x.rows(), x.rowElements(), eps));
    }

    @Override
    public void headRmsNorm(Tensor x, Tensor weight, float eps) {
        requireActivation(x, "headRmsNorm x");
        OpShapes.headRmsNorm(x, weight);
        check(KilnCpu.kiln_cpu_head_rms_norm(x.address(), x.rowStride(), x.size(0), x.size(1), x.size(2),
                weight.address(), weight.dtype().code, eps));
    }

    @Override
    public void rotary(Tensor q, Tensor k, Tensor positions, Tensor cosSin, boolean neoxStyle) {
        requireActivation(q, "rotary q");
        requireActivation(k, "rotary k");
        requireDType(positions, DType.I32, "rotary positions");
        requireDType(cosSin, DType.F32, "rotary cosSin");
        OpShapes.rotary(q, k, positions, cosSin);
        long headDim = q.size(2);
        check(KilnCpu.kiln_cpu_rotary(q.address(), q.rowStride(), q.size(1), k.address(), k.rowStride(), k.size(1),
                headDim, positions.address(), q.size(0), cosSin.address(), cosSin.size(0), neoxStyle ? 1 : 0));
    }

    /** The {@link #failNextGemms} hook: throws while injected failures are left. */
    private void failIfInjected() {
        // NOTE: one volatile read when no failure is injected; the update only runs when one is.
        if (gemmFailuresToInject.get() > 0 && gemmFailuresToInject.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            throw new BackendException("CPU op failed: gemm: injected failure (CpuBackend.failNextGemms)");
        }
    }

    @Override
    public void gemm(Tensor out, Tensor x, Tensor w, Tensor bias) {
        failIfInjected();
        requireActivation(out, "gemm out");
        requireActivation(x, "gemm x");
        OpShapes.gemm(out, x, w, bias);
        if (!w.dtype().isFloat()) {
            throw new BackendException("gemm of " + w.dtype() + " weights needs their scales: " + w);
        }
        long m = x.rows();
        long n = w.size(0);
        long k = w.size(1);
        check(KilnCpu.kiln_cpu_gemm(out.address(), out.rowStride(), x.address(), x.rowStride(), w.address(),
                w.dtype().code, bias == null ? 0 : bias.address(), bias == null ? 0 : bias.dtype().code, m, n, k));
    }

    @Override
    public void gemm(Tensor out, Tensor x, Tensor w, Tensor wScales, Tensor bias) {
        if (wScales == null) {
            gemm(out, x, w, bias);
            return;
        }
        failIfInjected();
        requireActivation(out, "gemm out");
        requireActivation(x, "gemm x");
        requireDType(w, DType.I8, "quantised gemm w");
        requireRowScales(out, x, w, wScales, bias);
        check(KilnCpu.kiln_cpu_gemm_i8(out.address(), out.rowStride(), x.address(), x.rowStride(), w.address(),
                wScales.address(), bias == null ? 0 : bias.address(), bias == null ? 0 : bias.dtype().code,
                x.rows(), w.size(0), w.size(1)));
    }

    @Override
    public void gemm(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs, Tensor bias) {
        if (inputs == null) {
            if (w.dtype() == DType.F8_E4M3) {
                throw new BackendException("gemm of F8_E4M3 weights needs their input quantization: " + w);
            }
            gemm(out, x, w, wScales, bias);
            return;
        }
        failIfInjected();
        requireActivation(out, "gemm out");
        requireActivation(x, "gemm x");
        requireDType(w, DType.F8_E4M3, "FP8 gemm w");
        if (wScales == null) {
            throw new BackendException("gemm of F8_E4M3 weights needs their scales: " + w);
        }
        requireRowScales(out, x, w, wScales, bias);
        int mode = switch (inputs.mode()) {
            case NONE -> KilnCpu.KILN_FP8_INPUT_NONE;
            case DYNAMIC_PER_TOKEN -> KilnCpu.KILN_FP8_INPUT_DYNAMIC_PER_TOKEN;
            case STATIC_PER_TENSOR -> KilnCpu.KILN_FP8_INPUT_STATIC_PER_TENSOR;
        };
        check(KilnCpu.kiln_cpu_gemm_f8(out.address(), out.rowStride(), x.address(), x.rowStride(), w.address(),
                wScales.address(), mode, inputs.staticScale(), inputs.scaleUpperBound(),
                bias == null ? 0 : bias.address(), bias == null ? 0 : bias.dtype().code, x.rows(), w.size(0),
                w.size(1)));
    }

    private static void requireRowScales(Tensor out, Tensor x, Tensor w, Tensor wScales, Tensor bias) {
        requireDType(wScales, DType.F32, "gemm wScales");
        OpShapes.gemm(out, x, w, bias);
        requireContiguous(wScales, "gemm wScales");
        if (wScales.numel() != w.size(0)) {
            throw new BackendException("gemm wScales " + wScales + " needs one scale per row of " + w);
        }
    }

    @Override
    public boolean supportsQuantizedWeights(DType dtype) {
        return dtype == DType.I8 || dtype == DType.F8_E4M3;
    }

    @Override
    public void quantizeRows(Tensor destination, Tensor scales, Tensor hostSource) {
        if (destination.dtype() != DType.F8_E4M3) {
            requireDType(destination, DType.I8, "quantizeRows destination");
        }
        OpShapes.quantizeRows(destination, scales, hostSource);
        if (destination.dtype() == DType.F8_E4M3) {
            check(KilnCpu.kiln_cpu_quantize_f8_rows(destination.address(), scales.address(), hostSource.address(),
                    hostSource.dtype().code, destination.size(0), destination.size(1)));
            return;
        }
        check(KilnCpu.kiln_cpu_quantize_i8_rows(destination.address(), scales.address(), hostSource.address(),
                hostSource.dtype().code, destination.size(0), destination.size(1)));
    }

    @Override
    public void siluAndMul(Tensor out, Tensor gateUp) {
        requireActivation(out, "siluAndMul out");
        requireActivation(gateUp, "siluAndMul gateUp");
        OpShapes.siluAndMul(out, gateUp);
        check(KilnCpu.kiln_cpu_silu_and_mul(out.address(), gateUp.address(), out.rows(), out.rowElements()));
    }

    @Override
    public void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping) {
        requireActivation(k, "writeKvCache k");
        requireActivation(v, "writeKvCache v");
        requireActivation(kCache, "writeKvCache kCache");
        requireActivation(vCache, "writeKvCache vCache");
        requireDType(slotMapping, DType.I32, "writeKvCache slotMapping");
        OpShapes.writeKvCache(k, v, kCache, vCache, slotMapping);
        check(KilnCpu.kiln_cpu_write_kv_cache(k.address(), k.rowStride(), v.address(), v.rowStride(),
                kCache.address(), vCache.address(), slotMapping.address(), k.rows(), kCache.size(2), kCache.size(3),
                kCache.size(0) * kCache.size(1)));
    }

    @Override
    public boolean supportsKvCacheDType(DType dtype, int headDim) {
        return dtype == DType.F32 || dtype == DType.F8_E4M3;
    }

    @Override
    public void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping,
            KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            writeKvCache(k, v, kCache, vCache, slotMapping);
            return;
        }
        requireActivation(k, "writeKvCache k");
        requireActivation(v, "writeKvCache v");
        KvCacheScales.requireFp8Cache(kCache, vCache, scales, "writeKvCache", "CPU");
        requireDType(slotMapping, DType.I32, "writeKvCache slotMapping");
        OpShapes.writeKvCache(k, v, kCache, vCache, slotMapping);
        check(KilnCpu.kiln_cpu_write_kv_cache_e4m3(k.address(), k.rowStride(), v.address(), v.rowStride(),
                kCache.address(), vCache.address(), scales.k().address(), scales.v().address(), slotMapping.address(),
                k.rows(), kCache.size(2), kCache.size(3), kCache.size(0) * kCache.size(1)));
    }

    @Override
    public void attention(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata,
            float scale, KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            attention(out, q, kCache, vCache, metadata, scale);
            return;
        }
        requireActivation(out, "attention out");
        requireActivation(q, "attention q");
        KvCacheScales.requireFp8Cache(kCache, vCache, scales, "attention", "CPU");
        OpShapes.attention(out, q, kCache, vCache, metadata);
        check(KilnCpu.kiln_cpu_attention_e4m3(out.address(), out.rowStride(), q.address(), q.rowStride(),
                kCache.address(), vCache.address(), scales.k().address(), scales.v().address(),
                metadata.blockTables().address(),
                metadata.maxBlocksPerSeq(), metadata.queryStart().address(), metadata.seqLens().address(),
                metadata.numSeqs(), metadata.numTokens(), q.size(1), kCache.size(2), q.size(2), kCache.size(1),
                kCache.size(0), scale));
    }

    @Override
    public void attention(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata,
            float scale) {
        requireActivation(out, "attention out");
        requireActivation(q, "attention q");
        OpShapes.attention(out, q, kCache, vCache, metadata);
        long numQHeads = q.size(1);
        long headDim = q.size(2);
        check(KilnCpu.kiln_cpu_attention(out.address(), out.rowStride(), q.address(), q.rowStride(),
                kCache.address(), vCache.address(), metadata.blockTables().address(), metadata.maxBlocksPerSeq(),
                metadata.queryStart().address(), metadata.seqLens().address(), metadata.numSeqs(),
                metadata.numTokens(), numQHeads, kCache.size(2), headDim, kCache.size(1), kCache.size(0), scale));
    }

    @Override
    public void gatherRows(Tensor out, Tensor in, Tensor rows) {
        requireActivation(out, "gatherRows out");
        requireActivation(in, "gatherRows in");
        requireDType(rows, DType.I32, "gatherRows rows");
        OpShapes.gatherRows(out, in, rows);
        check(KilnCpu.kiln_cpu_gather_rows(out.address(), in.address(), in.rowStride(), rows.address(), out.rows(),
                in.rows(), in.rowElements()));
    }

    @Override
    public void argmax(Tensor logits, Tensor ids, Tensor logprobs) {
        requireActivation(logits, "argmax logits");
        requireDType(ids, DType.I32, "argmax ids");
        OpShapes.argmax(logits, ids, logprobs);
        check(KilnCpu.kiln_cpu_argmax(logits.address(), logits.rows(), logits.rowElements(), ids.address(),
                logprobs == null ? 0 : logprobs.address()));
    }

    /**
     * Test hook: the next {@code count} calls of {@link #gemm} (from any thread) throw a {@link
     * BackendException} instead of running, as a failing device op would, so that tests can fail a
     * model step on demand. 0 cancels what is left. Not for production use.
     */
    public void failNextGemms(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        gemmFailuresToInject.set(count);
    }

    @Override
    public void sample(Tensor logits, Tensor rows, Tensor penalties, Tensor ids, Tensor logprobs) {
        OpShapes.sample(logits, rows, penalties, ids, logprobs);
        check(KilnCpu.kiln_cpu_sample(logits.address(), logits.rows(), logits.rowElements(), rows.address(),
                penalties == null ? 0 : penalties.address(), penalties == null ? 0 : penalties.size(0), ids.address(),
                logprobs == null ? 0 : logprobs.address()));
    }

    @Override
    public void resetPenaltyRow(Tensor penalties, int row, Tensor ids, int numPrompt, int numOutput,
            int numSuppressed) {
        OpShapes.resetPenaltyRow(penalties, row, ids, numPrompt, numOutput, numSuppressed);
        check(KilnCpu.kiln_cpu_reset_penalty_row(penalties.address(), penalties.size(0), penalties.size(1), row,
                ids.address(), numPrompt, numOutput, numSuppressed));
    }

    @Override
    public void maskLogits(Tensor logits, Tensor masks, Tensor rows, int numRows) {
        OpShapes.maskLogits(logits, masks, rows, numRows);
        check(KilnCpu.kiln_cpu_mask_logits(logits.address(), logits.rows(), logits.rowElements(), masks.address(),
                rows.address(), numRows));
    }

    @Override
    public void addLogitBias(Tensor logits, Tensor entries, int count) {
        OpShapes.addLogitBias(logits, entries, count);
        check(KilnCpu.kiln_cpu_add_logit_bias(logits.address(), logits.rows(), logits.rowElements(), entries.address(),
                count));
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (long address : allocations.keySet()) {
            KilnCpu.kiln_cpu_free(address);
        }
        allocations.clear();
        allocatedBytes = 0;
    }

    // ---- checks ------------------------------------------------------------------------------

    private void ensureOpen() {
        if (closed) {
            throw new BackendException("the CPU backend is closed");
        }
    }

    private static void check(int status) {
        if (status != 0) {
            throw new BackendException("CPU op failed: " + KilnCpu.kiln_last_error());
        }
    }

    private static void requireActivation(Tensor tensor, String what) {
        requireDType(tensor, DType.F32, what);
    }

    private static void requireDType(Tensor tensor, DType dtype, String what) {
        TensorChecks.requireDType(tensor, dtype, what, "CPU");
    }
}
