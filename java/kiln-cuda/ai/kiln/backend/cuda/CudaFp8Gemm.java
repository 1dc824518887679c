package ai.kiln.backend.cuda;

import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_A_SCALE_MODE;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_A_SCALE_POINTER;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_B_SCALE_MODE;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_B_SCALE_POINTER;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_TRANSA;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_TRANSB;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_REDUCTION_SCHEME_NONE;
import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_SUCCESS;
import static org.bytedeco.cuda.global.cublas.cublasLtCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtDestroy;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmul;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulAlgoGetHeuristic;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulDescCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulDescDestroy;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulDescSetAttribute;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulPreferenceCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulPreferenceDestroy;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulPreferenceSetAttribute;
import static org.bytedeco.cuda.global.cublas.cublasLtMatrixLayoutCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtMatrixLayoutDestroy;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16F;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;
import static org.bytedeco.cuda.global.cudart.CUDA_R_8F_E4M3;

import ai.kiln.backend.BackendException;
import ai.kiln.backend.InputQuantization;
import ai.kiln.backend.OpShapes;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.cuda.cublas.cublasLtContext;
import org.bytedeco.cuda.cublas.cublasLtMatmulDescOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulHeuristicResult_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulPreferenceOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatrixLayoutOpaque_t;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * The CUDA backend's FP8 matrix products, kiln_cpu_gemm_f8's semantics (native/include/kiln_cpu.h)
 * over e4m3 weights [N, K] with a scale per row:
 *
 * <ul>
 *   <li>with quantised inputs (dynamic per token, or static), the activations are quantised by
 *       Kiln's kernel, then multiplied by Kiln's skinny tensor-core product for decode-sized row
 *       counts (at most {@link KilnCuda#KILN_CUDA_GEMV_F8_MAX_ROWS}), by Kiln's narrow wgmma product
 *       on Hopper up to 32 rows (both computing SiLU-and-mul too in the gated form), or by
 *       cuBLASLt's FP8 GEMM with the per-token x per-channel scales applied in its epilogue
 *       (outer-vector scaling) for more;
 *   <li>weight-only (W8A16), the weights are dequantised into a float copy multiplied through the
 *       backend's float GEMM (one extra rounding of each weight to the activation type).
 * </ul>
 *
 * <p>The scratch buffers grow with the largest product seen. Graphs recorded over an older buffer
 * keep it: it is retired, not freed, until the backend closes.
 */
final class CudaFp8Gemm implements AutoCloseable {

    /** Whether the skinny product or cuBLASLt takes m rows (tests force either). */
    private final int skinnyMaxRows = Math.max(0, Math.min(KilnCuda.KILN_CUDA_GEMV_F8_MAX_ROWS,
            Integer.getInteger("kiln.cuda.fp8GemvMaxRows", KilnCuda.KILN_CUDA_GEMV_F8_MAX_ROWS)));

    /**
     * Up to how many rows the narrow product takes m where it runs: 32 by default, its smallest
     * token tile, where it beat cuBLASLt on every projection of the 8B on an H200 (1.0-1.4x; the
     * 64- and 128-token tiles lost to it on all but gate/up, docs/performance.md). Comparisons and
     * tests raise it to {@link KilnCuda#KILN_CUDA_GEMM_F8_NARROW_MAX_ROWS}; 0 turns it off.
     */
    private final int narrowMaxRows = Math.max(0, Math.min(KilnCuda.KILN_CUDA_GEMM_F8_NARROW_MAX_ROWS,
            Integer.getInteger("kiln.cuda.fp8NarrowMaxRows", 32)));
    private final boolean narrowRuns = KilnCuda.kiln_cuda_supports_gemm_f8_narrow() == 1;

    private final CudaBackend backend;
    private final DType activation;
    private final long workspace;
    private final long workspaceBytes;
    private final cublasLtContext lt = new cublasLtContext();
    private final cublasLtMatmulDescOpaque_t desc;
    private final cublasLtMatmulPreferenceOpaque_t preference;
    private final LongPointer scalePointer = new LongPointer(1);
    private final FloatPointer one = new FloatPointer(1f);
    private final FloatPointer zero = new FloatPointer(0f);
    private final Map<List<Long>, Plan> plans = new HashMap<>();
    private final Scratch quantizedInputs; // [m, k] e4m3
    private final Scratch inputScales;     // [m] F32
    private final Scratch dequantizedWeight; // [n, k] activations (the weight-only path)
    private final Scratch narrowWorkspace;   // the narrow product's split counters and fp32 partial sums

    /** A cuBLASLt product of one shape: its layouts and the algorithm its heuristic chose. */
    private record Plan(cublasLtMatrixLayoutOpaque_t a, cublasLtMatrixLayoutOpaque_t b, cublasLtMatrixLayoutOpaque_t d,
            cublasLtMatmulHeuristicResult_t algorithm) {
    }

    CudaFp8Gemm(CudaBackend backend, DType activation, long workspace, long workspaceBytes) {
        this.backend = backend;
        this.activation = activation;
        this.workspace = workspace;
        this.workspaceBytes = workspaceBytes;
        this.quantizedInputs = new Scratch("the FP8 GEMM's quantised inputs");
        this.inputScales = new Scratch("the FP8 GEMM's input scales");
        this.dequantizedWeight = new Scratch("the FP8 GEMM's dequantised weight");
        this.narrowWorkspace = new Scratch("the narrow FP8 product's workspace");
        checkLt(cublasLtCreate(lt), "cublasLtCreate");
        try (PointerPointer<Pointer> created = new PointerPointer<>(1)) {
            checkLt(cublasLtMatmulDescCreate(created, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
            desc = new cublasLtMatmulDescOpaque_t(created.get(0));
            // Row-major out[M, N] = x[M, K] w[N, K]^T is column-major out^T[N, M] = w^T x^T: A = w read
            // transposed, B = x as stored (the "TN" form FP8 needs).
            setInt(CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
            setInt(CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
            setInt(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F);
            setInt(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F);
            checkLt(cublasLtMatmulPreferenceCreate(created), "cublasLtMatmulPreferenceCreate");
            preference = new cublasLtMatmulPreferenceOpaque_t(created.get(0));
        }
        try (LongPointer bytes = new LongPointer(1)) {
            bytes.put(workspaceBytes);
            checkLt(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, bytes, 8),
                    "cublasLtMatmulPreferenceSetAttribute");
        }
        // A split-K algorithm may add its partial sums in the output type (bf16) or in place; only
        // fp32 partials keep the product's accuracy.
        try (IntPointer schemes = new IntPointer(1)) {
            schemes.put(CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE);
            checkLt(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, schemes,
                    4), "cublasLtMatmulPreferenceSetAttribute");
        }
    }

    /** See {@link ai.kiln.backend.Backend#gemm(Tensor, Tensor, Tensor, Tensor, InputQuantization, Tensor)}. */
    void gemm(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs, Tensor bias) {
        checkOperands(out, x, w, wScales, bias);
        long m = x.rows();
        long n = w.size(0);
        long k = w.size(1);
        if (m == 0) {
            return;
        }
        if (inputs.mode() == InputQuantization.Mode.NONE) {
            backend.gemm(out, x, dequantized(w, wScales), bias);
            return;
        }
        quantizeInputs(x, inputs, k);
        if (skinnyApplies(m, k)) {
            backend.checkKernel(KilnCuda.kiln_cuda_gemv_f8(out.address(), out.rowStride(), out.dtype().code,
                    quantizedInputs.address(), inputScales.address(), 0, w.address(), wScales.address(),
                    bias == null ? 0 : bias.address(), m, n, k, activation.code, backend.streamAddress()));
            return;
        }
        if (narrowApplies(m, k)) {
            narrowProduct(out, out.rowStride(), out.dtype(), false, w, wScales, bias, m, n, k);
            return;
        }
        cublasLtProduct(out, m, n, k, w, wScales);
        if (bias != null) {
            backend.checkKernel(KilnCuda.kiln_cuda_add_bias(out.address(), out.rowStride(), bias.address(), m, n,
                    activation.code, backend.streamAddress()));
        }
    }

    /**
     * The gated FP8 product (gate/up and SiLU-and-mul) when the skinny or the narrow kernel takes it
     * in one pass; false when the caller is to run the product and the SiLU-and-mul apart.
     */
    boolean gemmSiluAndMul(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs, Tensor gateUp) {
        long m = x.rows();
        long k = w.size(1);
        boolean skinny = skinnyApplies(m, k);
        if (inputs.mode() == InputQuantization.Mode.NONE || !(skinny || narrowApplies(m, k)) || m == 0) {
            return false;
        }
        checkOperands(gateUp, x, w, wScales, null);
        OpShapes.siluAndMul(out, gateUp);
        backend.requireActivationOf(out, "gemmSiluAndMul out");
        quantizeInputs(x, inputs, k);
        if (skinny) {
            backend.checkKernel(KilnCuda.kiln_cuda_gemv_f8(out.address(), out.rowStride(), activation.code,
                    quantizedInputs.address(), inputScales.address(), 1, w.address(), wScales.address(), 0, m,
                    out.rowElements(), k, activation.code, backend.streamAddress()));
        } else {
            narrowProduct(out, out.rowStride(), activation, true, w, wScales, null, m, out.rowElements(), k);
        }
        return true;
    }

    /**
     * Quantises a device matrix [N, K] (F32, F16 or BF16) row by row into e4m3 with a scale per row
     * (kiln_cpu_quantize_f8_rows's rule), refusing a row that holds a NaN or an infinity.
     */
    void quantizeRows(Tensor destination, Tensor scales, Tensor deviceSource) {
        long rows = destination.size(0);
        long cols = destination.size(1);
        backend.checkKernel(KilnCuda.kiln_cuda_quantize_e4m3(destination.address(), scales.address(),
                deviceSource.address(), cols, deviceSource.dtype().code, KilnCuda.KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN,
                0f, 0f, rows, cols, backend.streamAddress()));
        float[] values = new float[Math.toIntExact(rows)];
        backend.copyToHost(scales, values, values.length);
        for (int r = 0; r < values.length; r++) {
            if (!Float.isFinite(values[r])) {
                throw new BackendException("quantizeRows: row " + r + " holds a NaN or infinite value");
            }
        }
    }

    private void checkOperands(Tensor out, Tensor x, Tensor w, Tensor wScales, Tensor bias) {
        backend.requireActivationOf(x, "FP8 gemm x");
        if (w.dtype() != DType.F8_E4M3) {
            throw new BackendException("FP8 gemm w must be F8_E4M3, got " + w);
        }
        if (out.dtype() != activation && out.dtype() != DType.F32) {
            throw new BackendException("FP8 gemm out must be " + activation + " or F32, got " + out);
        }
        if (wScales == null || wScales.dtype() != DType.F32 || !wScales.isContiguous()
                || wScales.numel() != w.size(0)) {
            throw new BackendException("FP8 gemm of " + w + " needs one F32 scale per row, got " + wScales);
        }
        OpShapes.gemm(out, x, w, bias);
        if (bias != null) {
            if (out.dtype() != activation) {
                throw new BackendException("FP8 gemm with a bias needs " + activation + " output, got " + out);
            }
            backend.requireActivationOf(bias, "FP8 gemm bias");
        }
        if (w.size(1) % 16 != 0 || w.address() % 16 != 0) {
            throw new BackendException("FP8 products on the CUDA backend need K a multiple of 16 and 16-byte"
                    + " aligned weights; got " + w);
        }
    }

    private boolean skinnyApplies(long m, long k) {
        return m <= skinnyMaxRows && k % 64 == 0;
    }

    private boolean narrowApplies(long m, long k) {
        return narrowRuns && m <= narrowMaxRows && k % 128 == 0;
    }

    /** The narrow product over the quantised inputs in the scratch buffers (n: the output's columns). */
    private void narrowProduct(Tensor out, long outStride, DType outType, boolean gated, Tensor w, Tensor wScales,
            Tensor bias, long m, long n, long k) {
        long need = KilnCuda.kiln_cuda_gemm_f8_narrow_workspace_size(m, n, k, gated ? 1 : 0);
        if (need > 0) {
            narrowWorkspace.ensureZeroed(need);
        }
        backend.checkKernel(KilnCuda.kiln_cuda_gemm_f8_narrow(out.address(), outStride, outType.code,
                quantizedInputs.address(), inputScales.address(), gated ? 1 : 0, w.address(), wScales.address(),
                bias == null ? 0 : bias.address(), m, n, k, activation.code,
                need > 0 ? narrowWorkspace.address() : 0, need > 0 ? narrowWorkspace.bytes() : 0,
                backend.streamAddress()));
    }

    /** xq [m, k] e4m3 and their scales [m] into the scratch buffers. */
    private void quantizeInputs(Tensor x, InputQuantization inputs, long k) {
        long m = x.rows();
        quantizedInputs.ensure(m * k);
        inputScales.ensure(4 * m);
        int mode = inputs.mode() == InputQuantization.Mode.STATIC_PER_TENSOR
                ? KilnCuda.KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR
                : KilnCuda.KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN;
        backend.checkKernel(KilnCuda.kiln_cuda_quantize_e4m3(quantizedInputs.address(), inputScales.address(),
                x.address(), x.rowStride(), activation.code, mode, inputs.staticScale(), inputs.scaleUpperBound(), m,
                k, backend.streamAddress()));
    }

    /** The weight as activations, w[r, c] * wScales[r], in the scratch buffer (valid until the next call). */
    private Tensor dequantized(Tensor w, Tensor wScales) {
        long n = w.size(0);
        long k = w.size(1);
        dequantizedWeight.ensure(n * k * activation.bytes);
        backend.checkKernel(KilnCuda.kiln_cuda_dequantize_e4m3(dequantizedWeight.address(), w.address(),
                wScales.address(), n, k, activation.code, backend.streamAddress()));
        return Tensor.of(dequantizedWeight.address(), activation, n, k);
    }

    /** out = (xq @ w^T) * xScales x wScales through cuBLASLt, the scales in its epilogue. */
    private void cublasLtProduct(Tensor out, long m, long n, long k, Tensor w, Tensor wScales) {
        int outType = out.dtype() == DType.F32 ? CUDA_R_32F
                : activation == DType.BF16 ? CUDA_R_16BF : activation == DType.F16 ? CUDA_R_16F : CUDA_R_32F;
        // The alignments are part of the algorithm's choice (cuBLASLt assumes 256 bytes unless told).
        long wAlignment = alignment(w.address());
        long outAlignment = alignment(out.address());
        Plan plan = plans.computeIfAbsent(List.of(m, n, k, out.rowStride(), (long) outType, wAlignment, outAlignment),
                key -> plan(m, n, k, out.rowStride(), outType, wAlignment, outAlignment));
        setPointer(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, wScales.address());
        setPointer(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, inputScales.address());
        CudaBackend.RawPointer d = new CudaBackend.RawPointer(out.address());
        checkLt(cublasLtMatmul(lt, desc, one, new CudaBackend.RawPointer(w.address()), plan.a(),
                new CudaBackend.RawPointer(quantizedInputs.address()), plan.b(), zero, d, plan.d(), d, plan.d(),
                plan.algorithm().algo(), new CudaBackend.RawPointer(workspace), workspaceBytes, backend.stream()),
                "cublasLtMatmul (FP8) " + m + "x" + n + "x" + k);
    }

    private Plan plan(long m, long n, long k, long outStride, int outType, long wAlignment, long outAlignment) {
        List<cublasLtMatrixLayoutOpaque_t> layouts = new ArrayList<>(); // a, b, d
        cublasLtMatmulHeuristicResult_t result = new cublasLtMatmulHeuristicResult_t();
        try (PointerPointer<Pointer> created = new PointerPointer<>(1); IntPointer found = new IntPointer(1)) {
            long[][] shapes = {{CUDA_R_8F_E4M3, k, n, k}, {CUDA_R_8F_E4M3, k, m, k}, {outType, n, m, outStride}};
            for (long[] shape : shapes) {
                checkLt(cublasLtMatrixLayoutCreate(created, (int) shape[0], shape[1], shape[2], shape[3]),
                        "cublasLtMatrixLayoutCreate");
                layouts.add(new cublasLtMatrixLayoutOpaque_t(created.get(0)));
            }
            setPreference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, wAlignment);
            setPreference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(quantizedInputs.address()));
            setPreference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, outAlignment);
            setPreference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, outAlignment);
            // The scale pointers are part of what the heuristic checks (their alignment): any valid ones.
            setPointer(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, inputScales.address());
            setPointer(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, inputScales.address());
            cublasLtMatrixLayoutOpaque_t a = layouts.get(0), b = layouts.get(1), d = layouts.get(2);
            int status = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, d, d, preference, 1, result, found);
            if (status != CUBLAS_STATUS_SUCCESS || found.get() == 0) {
                throw new BackendException("cuBLASLt has no FP8 GEMM with per-row scales for " + m + "x" + n + "x" + k
                        + " (weights " + wAlignment + "-byte, output " + outAlignment + "-byte aligned) on this device"
                        + " (status " + status + ", " + found.get() + " algorithms)");
            }
            return new Plan(a, b, d, result);
        } catch (RuntimeException e) {
            layouts.forEach(layout -> cublasLtMatrixLayoutDestroy(layout));
            result.close();
            throw e;
        }
    }

    /** The alignment of a device address in bytes, at most 256 (what cuBLASLt assumes by default). */
    private static long alignment(long address) {
        return address == 0 ? 256 : Math.min(256, Long.lowestOneBit(address));
    }

    private void setPreference(int attribute, long value) {
        try (IntPointer v = new IntPointer(1)) {
            v.put((int) value);
            checkLt(cublasLtMatmulPreferenceSetAttribute(preference, attribute, v, 4),
                    "cublasLtMatmulPreferenceSetAttribute");
        }
    }

    private void setInt(int attribute, int value) {
        try (IntPointer v = new IntPointer(1)) {
            v.put(value);
            checkLt(cublasLtMatmulDescSetAttribute(desc, attribute, v, 4), "cublasLtMatmulDescSetAttribute");
        }
    }

    private void setPointer(int attribute, long address) {
        scalePointer.put(address);
        checkLt(cublasLtMatmulDescSetAttribute(desc, attribute, scalePointer, 8), "cublasLtMatmulDescSetAttribute");
    }

    private static void checkLt(int status, String what) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new BackendException(what + " failed with cuBLAS status " + status);
        }
    }

    @Override
    public void close() {
        for (Plan plan : plans.values()) {
            cublasLtMatrixLayoutDestroy(plan.a());
            cublasLtMatrixLayoutDestroy(plan.b());
            cublasLtMatrixLayoutDestroy(plan.d());
            plan.algorithm().close();
        }
        plans.clear();
        quantizedInputs.free();
        inputScales.free();
        dequantizedWeight.free();
        narrowWorkspace.free();
        cublasLtMatmulPreferenceDestroy(preference);
        cublasLtMatmulDescDestroy(desc);
        cublasLtDestroy(lt);
        scalePointer.close();
        one.close();
        zero.close();
    }

    /**
     * A device buffer that grows to the largest size asked for. Growing while graphs exist retires
     * the old buffer instead of freeing it, since a recorded graph may still read it.
     */
    private final class Scratch {
        private final String what;
        private final List<Long> retired = new ArrayList<>();
        private long address;
        private long bytes;

        Scratch(String what) {
            this.what = what;
        }

        void ensure(long need) {
            grow(need);
        }

        /** As {@link #ensure}, a new buffer zero-filled (kernels that keep counters in it leave them at zero). */
        void ensureZeroed(long need) {
            if (grow(need)) {
                backend.zeroScratch(address, bytes);
            }
        }

        long bytes() {
            return bytes;
        }

        /** Whether a new buffer was allocated. */
        private boolean grow(long need) {
            if (need <= bytes) {
                return false;
            }
            if (backend.isCapturing()) {
                throw new BackendException(what + " must grow from " + bytes + " to " + need
                        + " bytes while a graph is being recorded; an eager step of that size must come first");
            }
            if (address != 0) {
                if (backend.hasGraphs()) {
                    retired.add(address);
                } else {
                    backend.synchronize(); // queued kernels may still read the old buffer
                    backend.freeScratch(address);
                }
            }
            long rounded = Math.max(4096, Long.highestOneBit(Math.max(1, need - 1)) << 1);
            address = backend.allocateScratch(rounded, what);
            bytes = rounded;
            return true;
        }

        long address() {
            return address;
        }

        void free() {
            for (long old : retired) {
                backend.freeScratch(old);
            }
            retired.clear();
            if (address != 0) {
                backend.freeScratch(address);
                address = 0;
                bytes = 0;
            }
        }
    }
}
