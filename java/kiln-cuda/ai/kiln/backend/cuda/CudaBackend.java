package ai.kiln.backend.cuda;

import static ai.kiln.backend.TensorChecks.requireContiguous;

import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_GEMM_DEFAULT;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_SUCCESS;
import static org.bytedeco.cuda.global.cublas.cublasCreate_v2;
import static org.bytedeco.cuda.global.cublas.cublasDestroy_v2;
import static org.bytedeco.cuda.global.cublas.cublasGemmEx;
import static org.bytedeco.cuda.global.cublas.cublasSetStream_v2;
import static org.bytedeco.cuda.global.cublas.cublasSetWorkspace_v2;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16F;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;
import static org.bytedeco.cuda.global.cudart.cudaDevAttrComputeCapabilityMajor;
import static org.bytedeco.cuda.global.cudart.cudaDeviceGetAttribute;
import static org.bytedeco.cuda.global.cudart.cudaEventCreate;
import static org.bytedeco.cuda.global.cudart.cudaEventDestroy;
import static org.bytedeco.cuda.global.cudart.cudaEventRecord;
import static org.bytedeco.cuda.global.cudart.cudaEventSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaFreeHost;
import static org.bytedeco.cuda.global.cudart.cudaGraphDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphExecDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphInstantiate;
import static org.bytedeco.cuda.global.cudart.cudaGraphLaunch;
import static org.bytedeco.cuda.global.cudart.cudaStreamBeginCapture;
import static org.bytedeco.cuda.global.cudart.cudaStreamCaptureModeThreadLocal;
import static org.bytedeco.cuda.global.cudart.cudaStreamEndCapture;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMallocHost;
import static org.bytedeco.cuda.global.cudart.cudaMemGetInfo;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDefault;
import static org.bytedeco.cuda.global.cudart.cudaMemsetAsync;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamNonBlocking;
import static org.bytedeco.cuda.global.cudart.cudaStreamSynchronize;

import ai.kiln.backend.AttentionMetadata;
import ai.kiln.backend.Backend;
import ai.kiln.backend.BackendException;
import ai.kiln.backend.InputQuantization;
import ai.kiln.backend.KvCacheScales;
import ai.kiln.backend.OpShapes;
import ai.kiln.backend.TensorChecks;
import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The CUDA backend: Kiln's kernels (libkiln_cuda) for the layer ops and attention, cuBLAS for the
 * GEMMs, device memory and the stream through the JavaCPP CUDA presets. Activations and the KV
 * cache are bf16 (or fp16); weights are converted to that type when uploaded; logits are fp32.
 *
 * <p>Every op is issued on one stream and returns at once; {@link #copyToHost} and {@link
 * #synchronize} wait. Index arrays live on the device where the kernels cannot check them against
 * the host's view, so the model validates each step's metadata on the host before it is copied.
 */
public final class CudaBackend implements Backend {

    /** cuBLAS workspace, set once so that GEMMs never allocate (and can be graph-captured). */
    private static final long CUBLAS_WORKSPACE_BYTES = 32L << 20;
    /** Pinned staging buffers for uploads: two, so that filling one overlaps copying the other. */
    private static final long STAGING_BYTES = 64L << 20;
    /** Pinned memory for one step's metadata copies and the host side of small reads. */
    private static final long STEP_PINNED_BYTES = 16L << 20;

    private final int device;
    private final DType activation;
    private final CUstream_st stream = new CUstream_st();
    private final cublasContext cublas = new cublasContext();
    private final Map<Long, Pointer> allocations = new HashMap<>(); // address -> device pointer
    private final Pointer cublasWorkspace;
    private final Pointer[] staging = new Pointer[2];
    private final CUevent_st[] stagingFree = {new CUevent_st(), new CUevent_st()};
    private final Pointer stepPinned = new Pointer();
    private long stepPinnedUsed;
    private final FloatPointer one = new FloatPointer(1f);
    private final FloatPointer zero = new FloatPointer(0f);
    private final Map<Long, CUgraphExec_st> graphs = new HashMap<>(); // handle -> executable graph
    private long nextGraphHandle = 1;
    private boolean capturing;
    private final Workspace decodeWorkspace = new Workspace("the decode attention workspace", 1L << 20, true);
    private final Workspace argmaxWorkspace = new Workspace("the argmax workspace", 64L << 10, false);
    /** Products of at most this many rows run as Kiln's GEMV (0: always cuBLAS, for comparison). */
    private final int gemvMaxRows = Math.max(0, Math.min(KilnCuda.KILN_CUDA_GEMV_MAX_ROWS,
            Integer.getInteger("kiln.cuda.gemvMaxRows", KilnCuda.KILN_CUDA_GEMV_MAX_ROWS)));
    /** Device buffers of the FP8 products' scratch, by address. */
    private final Map<Long, Pointer> scratch = new HashMap<>();
    /** The FP8 products; null on a device before compute capability 9.0. */
    private final CudaFp8Gemm fp8;
    private boolean closed;

    /** Why the CUDA backend cannot run here, or null when it can (a device and the libraries load). */
    public static String unavailableReason() {
        try {
            KilnCuda.ensureLoaded();
            Class.forName("org.bytedeco.cuda.global.cudart");
            org.bytedeco.javacpp.Loader.load(org.bytedeco.cuda.global.cudart.class);
            int count = KilnCuda.kiln_cuda_device_count();
            return count > 0 ? null : "no CUDA device found";
        } catch (Throwable e) {
            return "the CUDA libraries did not load (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")";
        }
    }

    /**
     * @param device     CUDA device ordinal
     * @param activation BF16 or F16 (served models), or F32: fp32 activations, weights and KV cache
     *                   through the kernels' plain element-wise paths and the fallback attention,
     *                   for exact comparisons with the CPU backend (slow)
     */
    public CudaBackend(int device, DType activation) {
        if (activation != DType.BF16 && activation != DType.F16 && activation != DType.F32) {
            throw new IllegalArgumentException("CUDA activations must be BF16, F16 or F32, got " + activation);
        }
        String reason = unavailableReason();
        if (reason != null) {
            throw new BackendException("the CUDA backend is unavailable: " + reason);
        }
        this.device = device;
        this.activation = activation;
        check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        check(cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking), "cudaStreamCreate");
        checkCublas(cublasCreate_v2(cublas), "cublasCreate");
        checkCublas(cublasSetStream_v2(cublas, stream), "cublasSetStream");
        cublasWorkspace = deviceMalloc(CUBLAS_WORKSPACE_BYTES, "the cuBLAS workspace");
        checkCublas(cublasSetWorkspace_v2(cublas, cublasWorkspace, CUBLAS_WORKSPACE_BYTES), "cublasSetWorkspace");
        for (int i = 0; i < 2; i++) {
            staging[i] = new Pointer();
            check(cudaMallocHost(staging[i], STAGING_BYTES), "cudaMallocHost (upload staging)");
            check(cudaEventCreate(stagingFree[i]), "cudaEventCreate");
        }
        check(cudaMallocHost(stepPinned, STEP_PINNED_BYTES), "cudaMallocHost (step metadata)");
        fp8 = KilnCuda.kiln_cuda_supports_fp8() == 1
                ? new CudaFp8Gemm(this, activation, cublasWorkspace.address(), CUBLAS_WORKSPACE_BYTES)
                : null;
    }

    @Override
    public String name() {
        return "cuda";
    }

    /** cuda-sm90 on compute capability 9.x, cuda-sm80 on 8.x (the library's sm_80 build runs there). */
    @Override
    public String artifactTarget() {
        int[] major = {0};
        check(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
        return major[0] == 8 ? "cuda-sm80" : "cuda-sm" + (major[0] * 10);
    }

    @Override
    public String description() {
        long[] info = memoryInfo();
        return String.format("cuda (device %d, %s activations, %.1f of %.1f GiB free)", device, activation,
                info[0] / (double) (1L << 30), info[1] / (double) (1L << 30));
    }

    @Override
    public DType activationDType() {
        return activation;
    }

    @Override
    public DType weightDType(DType stored) {
        return activation;
    }

    @Override
    public DType logitsDType() {
        return DType.F32;
    }

    // ---- memory ------------------------------------------------------------------------------

    private Pointer deviceMalloc(long bytes, String what) {
        Pointer pointer = new Pointer();
        int status = cudaMalloc(pointer, bytes);
        if (status != 0) {
            long[] info = memoryInfo();
            throw new BackendException(String.format(
                    "out of GPU memory: %s needs %d bytes (%.2f GiB), %.2f GiB of %.2f GiB are free (%s)", what, bytes,
                    bytes / (double) (1L << 30), info[0] / (double) (1L << 30), info[1] / (double) (1L << 30),
                    errorString(status)));
        }
        return pointer;
    }

    /** {free, total} bytes of device memory. */
    private long[] memoryInfo() {
        try (SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
            check(cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new long[] {free.get(), total.get()};
        }
    }

    @Override
    public synchronized Tensor allocate(DType dtype, long... shape) {
        ensureOpen();
        Tensor probe = Tensor.of(0, dtype, shape);
        long bytes = Math.max(256, Math.multiplyExact(probe.numel(), (long) dtype.bytes));
        Pointer pointer = deviceMalloc(bytes, dtype + " " + Arrays.toString(shape));
        allocations.put(pointer.address(), pointer);
        return Tensor.of(pointer.address(), dtype, shape);
    }

    @Override
    public synchronized void free(Tensor tensor) {
        Pointer pointer = allocations.remove(tensor.address());
        if (pointer == null) {
            throw new BackendException("free of memory this backend did not allocate: " + tensor);
        }
        check(cudaFree(pointer), "cudaFree");
    }

    @Override
    public long freeMemoryBytes() {
        return memoryInfo()[0];
    }

    @Override
    public void setProfilerCollecting(boolean collecting) {
        checkKernel(collecting ? KilnCuda.kiln_cuda_profiler_start() : KilnCuda.kiln_cuda_profiler_stop());
    }

    @Override
    public long totalMemoryBytes() {
        return memoryInfo()[1];
    }

    /**
     * Copies host memory (e.g. a mapped safetensors file) to the device through the two pinned
     * staging buffers: while one chunk is copied asynchronously the next is converted / copied
     * into the other buffer, so reading the file overlaps the transfer.
     */
    @Override
    public void upload(Tensor destination, Tensor hostSource) {
        requireContiguous(destination, "upload destination");
        requireContiguous(hostSource, "upload source");
        if (destination.numel() != hostSource.numel()) {
            throw new BackendException("upload of " + hostSource + " into " + destination + ": sizes differ");
        }
        DType from = hostSource.dtype();
        DType to = destination.dtype();
        if (from != to && !(from.isFloat() && to.isFloat())) {
            throw new BackendException("upload cannot convert " + from + " to " + to);
        }
        long elementsPerChunk = STAGING_BYTES / Math.max(from.bytes, to.bytes);
        long done = 0;
        int buffer = 0;
        while (done < hostSource.numel()) {
            long count = Math.min(elementsPerChunk, hostSource.numel() - done);
            check(cudaEventSynchronize(stagingFree[buffer]), "cudaEventSynchronize");
            long stagingAddress = staging[buffer].address();
            long sourceAddress = hostSource.address() + done * from.bytes;
            if (from == to) {
                KilnCpu.kiln_cpu_copy(stagingAddress, sourceAddress, count * to.bytes);
            } else if (KilnCpu.kiln_cpu_convert(stagingAddress, to.code, sourceAddress, from.code, count) != 0) {
                throw new BackendException("upload: " + KilnCpu.kiln_last_error());
            }
            check(cudaMemcpyAsync(new RawPointer(destination.address() + done * to.bytes), staging[buffer],
                    count * to.bytes, cudaMemcpyDefault, stream), "cudaMemcpyAsync (upload)");
            check(cudaEventRecord(stagingFree[buffer], stream), "cudaEventRecord");
            done += count;
            buffer ^= 1;
        }
    }

    /** A slice of the pinned step buffer, valid until the next synchronisation. */
    private long stepPinned(long bytes) {
        long aligned = (bytes + 255) & ~255L;
        if (stepPinnedUsed + aligned > STEP_PINNED_BYTES) {
            // The earlier copies out of this buffer must finish before it is reused.
            synchronize();
        }
        if (aligned > STEP_PINNED_BYTES) {
            throw new BackendException("a host copy of " + bytes + " bytes exceeds the pinned step buffer");
        }
        long address = stepPinned.address() + stepPinnedUsed;
        stepPinnedUsed += aligned;
        return address;
    }

    @Override
    public void copyFromHost(Tensor destination, int[] values, int count) {
        requireDType(destination, DType.I32, "copyFromHost destination");
        if (count < 0 || count > values.length || count > destination.numel()) {
            throw new BackendException("copyFromHost of " + count + " ints into " + destination);
        }
        if (count == 0) {
            return;
        }
        long pinned = stepPinned(4L * count);
        KilnCpu.kiln_cpu_copy(pinned, values, 4L * count);
        check(cudaMemcpyAsync(new RawPointer(destination.address()), new RawPointer(pinned), 4L * count,
                cudaMemcpyDefault, stream), "cudaMemcpyAsync (metadata)");
    }

    @Override
    public void copyToHost(Tensor source, float[] destination, int count) {
        requireDType(source, DType.F32, "copyToHost source");
        requireContiguous(source, "copyToHost source");
        if (count < 0 || count > destination.length || count > source.numel()) {
            throw new BackendException("copyToHost of " + count + " floats from " + source);
        }
        if (4L * count > STEP_PINNED_BYTES) {
            readLarge(source, 4L * count, host -> KilnCpu.kiln_cpu_copy(destination, host, 4L * count));
            return;
        }
        long pinned = readBack(source, 4L * count);
        KilnCpu.kiln_cpu_copy(destination, pinned, 4L * count);
    }

    @Override
    public void copyToHost(Tensor source, int[] destination, int count) {
        requireDType(source, DType.I32, "copyToHost source");
        requireContiguous(source, "copyToHost source");
        if (count < 0 || count > destination.length || count > source.numel()) {
            throw new BackendException("copyToHost of " + count + " ints from " + source);
        }
        if (4L * count > STEP_PINNED_BYTES) {
            readLarge(source, 4L * count, host -> KilnCpu.kiln_cpu_copy(destination, host, 4L * count));
            return;
        }
        long pinned = readBack(source, 4L * count);
        KilnCpu.kiln_cpu_copy(destination, pinned, 4L * count);
    }

    /**
     * Reads more than the pinned step buffer holds (e.g. many rows of logits over a large
     * vocabulary) through host memory of its own, then hands its address to {@code into}.
     */
    private void readLarge(Tensor source, long bytes, java.util.function.LongConsumer into) {
        long host = KilnCpu.kiln_cpu_alloc(bytes);
        if (host == 0) {
            throw new BackendException("copyToHost: no host memory for " + bytes + " bytes (" + KilnCpu.kiln_last_error()
                    + ")");
        }
        try {
            check(cudaMemcpyAsync(new RawPointer(host), new RawPointer(source.address()), bytes, cudaMemcpyDefault,
                    stream), "cudaMemcpyAsync (read back)");
            synchronize();
            into.accept(host);
        } finally {
            KilnCpu.kiln_cpu_free(host);
        }
    }

    /** Copies device bytes into pinned memory and waits for them (and everything before). */
    private long readBack(Tensor source, long bytes) {
        long pinned = stepPinned(Math.max(bytes, 4));
        if (bytes > 0) {
            check(cudaMemcpyAsync(new RawPointer(pinned), new RawPointer(source.address()), bytes, cudaMemcpyDefault,
                    stream), "cudaMemcpyAsync (read back)");
        }
        synchronize();
        return pinned;
    }

    @Override
    public void synchronize() {
        check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        stepPinnedUsed = 0;
    }

    /** The stream every op runs on (for graph capture and events). */
    public CUstream_st stream() {
        return stream;
    }

    // ---- ops ---------------------------------------------------------------------------------

    long streamAddress() {
        return stream.address();
    }

    @Override
    public void embedding(Tensor out, Tensor table, Tensor ids) {
        requireActivation(out, "embedding out");
        requireActivation(table, "embedding table");
        requireDType(ids, DType.I32, "embedding ids");
        OpShapes.embedding(out, table, ids);
        checkKernel(KilnCuda.kiln_cuda_embedding(out.address(), table.address(), ids.address(), ids.numel(),
                table.size(1), table.size(0), activation.code, streamAddress()));
    }

    @Override
    public void rmsNorm(Tensor out, Tensor x, Tensor residual, Tensor weight, float eps) {
        requireActivation(out, "rmsNorm out");
        requireActivation(x, "rmsNorm x");
        requireActivation(weight, "rmsNorm weight");
        OpShapes.rmsNorm(out, x, residual, weight);
        if (residual != null) {
            requireActivation(residual, "rmsNorm residual");
        }
        checkKernel(KilnCuda.kiln_cuda_rms_norm(out.address(), out.rowStride(), x.address(), x.rowStride(),
                residual == null ? 0 : residual.address(), residual == null ? 0 : residual.rowStride(),
                weight.address(), x.rows(), x.rowElements(), eps, activation.code, streamAddress()));
    }

    @Override
    public void headRmsNorm(Tensor x, Tensor weight, float eps) {
        requireActivation(x, "headRmsNorm x");
        requireActivation(weight, "headRmsNorm weight");
        OpShapes.headRmsNorm(x, weight);
        checkKernel(KilnCuda.kiln_cuda_head_rms_norm(x.address(), x.rowStride(), x.size(0), x.size(1), x.size(2),
                weight.address(), eps, activation.code, streamAddress()));
    }

    @Override
    public void rotary(Tensor q, Tensor k, Tensor positions, Tensor cosSin, boolean neoxStyle) {
        checkRotary("rotary", q, k, positions, cosSin);
        checkKernel(KilnCuda.kiln_cuda_rotary(q.address(), q.rowStride(), q.size(1), k.address(), k.rowStride(),
                k.size(1), q.size(2), positions.address(), q.size(0), cosSin.address(), cosSin.size(0),
                neoxStyle ? 1 : 0, activation.code, streamAddress()));
    }

    /**
     * out = x @ w^T through cuBLAS. Row-major out[M, N] is column-major out^T[N, M] =
     * w[N, K] x^T: w's row-major storage read as column-major is w^T, hence op T on it.
     */
    @Override
    public void gemm(Tensor out, Tensor x, Tensor w, Tensor bias) {
        requireActivation(x, "gemm x");
        requireActivation(w, "gemm w");
        if (out.dtype() != activation && out.dtype() != DType.F32) {
            throw new BackendException("gemm out must be " + activation + " or F32, got " + out);
        }
        OpShapes.gemm(out, x, w, bias);
        long m = x.rows();
        long n = w.size(0);
        long k = w.size(1);
        if (m == 0) {
            return;
        }
        if (gemvApplies(m, k, x, w)) {
            checkKernel(KilnCuda.kiln_cuda_gemv(out.address(), out.rowStride(), out.dtype().code, x.address(),
                    x.rowStride(), 0, w.address(), bias == null ? 0 : checkedBias(bias, out), m, n, k,
                    activation.code, streamAddress()));
            return;
        }
        int inType = activation == DType.BF16 ? CUDA_R_16BF : activation == DType.F16 ? CUDA_R_16F : CUDA_R_32F;
        int outType = out.dtype() == DType.F32 ? CUDA_R_32F : inType;
        checkCublas(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) n, (int) m, (int) k, one,
                new RawPointer(w.address()), inType, (int) k, new RawPointer(x.address()), inType, (int) x.rowStride(),
                zero, new RawPointer(out.address()), outType, (int) out.rowStride(), CUBLAS_COMPUTE_32F,
                CUBLAS_GEMM_DEFAULT), "cublasGemmEx " + m + "x" + n + "x" + k);
        if (bias != null) {
            checkKernel(KilnCuda.kiln_cuda_add_bias(out.address(), out.rowStride(), checkedBias(bias, out), m, n,
                    activation.code, streamAddress()));
        }
    }

    /**
     * Whether a product of m rows runs as Kiln's GEMV (a stream over the weights, faster than a GEMM
     * library at decode sizes) rather than through cuBLAS.
     */
    private boolean gemvApplies(long m, long k, Tensor x, Tensor w) {
        return activation != DType.F32 && m <= gemvMaxRows && k % 8 == 0 && x.rowStride() % 8 == 0
                && x.address() % 16 == 0 && w.address() % 16 == 0;
    }

    private long checkedBias(Tensor bias, Tensor out) {
        if (out.dtype() != activation) {
            throw new BackendException("gemm with a bias needs " + activation + " output, got " + out);
        }
        requireActivation(bias, "gemm bias");
        return bias.address();
    }

    @Override
    public void gemmSiluAndMul(Tensor out, Tensor x, Tensor w, Tensor gateUp) {
        long m = x.rows();
        long k = w.size(1);
        if (!gemvApplies(m, k, x, w)) {
            Backend.super.gemmSiluAndMul(out, x, w, gateUp);
            return;
        }
        requireActivation(out, "gemmSiluAndMul out");
        requireActivation(x, "gemmSiluAndMul x");
        requireActivation(w, "gemmSiluAndMul w");
        OpShapes.gemm(gateUp, x, w, null);
        OpShapes.siluAndMul(out, gateUp);
        checkKernel(KilnCuda.kiln_cuda_gemv(out.address(), out.rowStride(), activation.code, x.address(),
                x.rowStride(), 1, w.address(), 0, m, out.rowElements(), k, activation.code, streamAddress()));
    }

    // ---- FP8 ----------------------------------------------------------------------------------

    /** FP8 (e4m3) weights on devices of compute capability 9.0 or later. */
    @Override
    public boolean supportsQuantizedWeights(DType dtype) {
        return dtype == DType.F8_E4M3 && fp8 != null;
    }

    /** Uploads the host matrix as it is stored, then quantises it on the device (see {@link CudaFp8Gemm}). */
    @Override
    public void quantizeRows(Tensor destination, Tensor scales, Tensor hostSource) {
        requireFp8("quantizeRows");
        requireDType(destination, DType.F8_E4M3, "quantizeRows destination");
        OpShapes.quantizeRows(destination, scales, hostSource);
        Tensor source = allocate(hostSource.dtype(), destination.shape());
        try {
            upload(source, hostSource);
            fp8.quantizeRows(destination, scales, source);
        } finally {
            synchronize();
            free(source);
        }
    }

    @Override
    public void gemm(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs, Tensor bias) {
        if (inputs == null) {
            Backend.super.gemm(out, x, w, wScales, null, bias);
            return;
        }
        requireFp8("gemm");
        fp8.gemm(out, x, w, wScales, inputs, bias);
    }

    @Override
    public void gemmSiluAndMul(Tensor out, Tensor x, Tensor w, Tensor wScales, InputQuantization inputs,
            Tensor gateUp) {
        if (inputs != null) {
            requireFp8("gemmSiluAndMul");
            if (fp8.gemmSiluAndMul(out, x, w, wScales, inputs, gateUp)) {
                return;
            }
        }
        Backend.super.gemmSiluAndMul(out, x, w, wScales, inputs, gateUp);
    }

    private void requireFp8(String op) {
        if (fp8 == null) {
            throw new BackendException(op + ": FP8 weights need a GPU of compute capability 9.0 or later"
                    + " (Hopper); Kiln's FP8 kernels are built for sm_90a");
        }
    }

    boolean isCapturing() {
        return capturing;
    }

    boolean hasGraphs() {
        return !graphs.isEmpty();
    }

    /** Device memory for a backend-internal buffer, freed by {@link #freeScratch} or at close. */
    long allocateScratch(long bytes, String what) {
        Pointer pointer = deviceMalloc(bytes, what);
        scratch.put(pointer.address(), pointer);
        return pointer.address();
    }

    /** Zero-fills scratch memory, in stream order. */
    void zeroScratch(long address, long bytes) {
        check(cudaMemsetAsync(new RawPointer(address), 0, bytes, stream), "cudaMemsetAsync");
    }

    void freeScratch(long address) {
        Pointer pointer = scratch.remove(address);
        if (pointer != null) {
            cudaFree(pointer);
        }
    }

    @Override
    public void rotaryWriteKvCache(Tensor q, Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor positions,
            Tensor slotMapping, Tensor cosSin, boolean neoxStyle) {
        checkRotary("rotaryWriteKvCache", q, k, positions, cosSin);
        checkWriteKvCache("rotaryWriteKvCache", k, v, kCache, vCache, slotMapping);
        checkKernel(KilnCuda.kiln_cuda_rotary_write_kv_cache(q.address(), q.rowStride(), q.size(1), k.address(),
                k.rowStride(), v.address(), v.rowStride(), kCache.address(), vCache.address(), slotMapping.address(),
                positions.address(), cosSin.address(), cosSin.size(0), neoxStyle ? 1 : 0, k.rows(), k.size(1),
                k.size(2), kCache.size(0) * kCache.size(1), activation.code, streamAddress()));
    }

    @Override
    public void siluAndMul(Tensor out, Tensor gateUp) {
        requireActivation(out, "siluAndMul out");
        requireActivation(gateUp, "siluAndMul gateUp");
        OpShapes.siluAndMul(out, gateUp);
        checkKernel(KilnCuda.kiln_cuda_silu_and_mul(out.address(), gateUp.address(), out.rows(), out.rowElements(),
                activation.code, streamAddress()));
    }

    @Override
    public void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping) {
        checkWriteKvCache("writeKvCache", k, v, kCache, vCache, slotMapping);
        checkKernel(KilnCuda.kiln_cuda_write_kv_cache(k.address(), k.rowStride(), v.address(), v.rowStride(),
                kCache.address(), vCache.address(), slotMapping.address(), k.rows(), kCache.size(2), kCache.size(3),
                kCache.size(0) * kCache.size(1), activation.code, streamAddress()));
    }

    /**
     * The activation type, or FP8 (e4m3 with a scale per slot and KV head) for bf16 / fp16
     * activations and the head sizes of the tensor-core attention kernels (64, 128, 256).
     */
    @Override
    public boolean supportsKvCacheDType(DType dtype, int headDim) {
        return dtype == activation || (dtype == DType.F8_E4M3
                && KilnCuda.kiln_cuda_attention_uses_tensor_cores(activation.code, headDim) == 1);
    }

    @Override
    public void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping,
            KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            writeKvCache(k, v, kCache, vCache, slotMapping);
            return;
        }
        checkWriteFp8KvCache("writeKvCache", k, v, kCache, vCache, slotMapping, scales);
        checkKernel(KilnCuda.kiln_cuda_write_kv_cache_e4m3(k.address(), k.rowStride(), v.address(), v.rowStride(),
                kCache.address(), vCache.address(), scales.k().address(), scales.v().address(), slotMapping.address(),
                k.rows(), kCache.size(2), kCache.size(3), kCache.size(0) * kCache.size(1), activation.code,
                streamAddress()));
    }

    @Override
    public void rotaryWriteKvCache(Tensor q, Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor positions,
            Tensor slotMapping, Tensor cosSin, boolean neoxStyle, KvCacheScales scales) {
        if (kCache.dtype() != DType.F8_E4M3) {
            rotaryWriteKvCache(q, k, v, kCache, vCache, positions, slotMapping, cosSin, neoxStyle);
            return;
        }
        checkRotary("rotaryWriteKvCache", q, k, positions, cosSin);
        checkWriteFp8KvCache("rotaryWriteKvCache", k, v, kCache, vCache, slotMapping, scales);
        checkKernel(KilnCuda.kiln_cuda_rotary_write_kv_cache_e4m3(q.address(), q.rowStride(), q.size(1),
                k.address(), k.rowStride(), v.address(), v.rowStride(), kCache.address(), vCache.address(),
                scales.k().address(), scales.v().address(), slotMapping.address(), positions.address(),
                cosSin.address(), cosSin.size(0), neoxStyle ? 1 : 0, k.rows(), k.size(1), k.size(2),
                kCache.size(0) * kCache.size(1), activation.code, streamAddress()));
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
        KvCacheScales.requireFp8Cache(kCache, vCache, scales, "attention", "CUDA");
        OpShapes.attention(out, q, kCache, vCache, metadata);
        attend(out, q, kCache, vCache, metadata, scale, scales);
    }

    @Override
    public void attention(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata,
            float scale) {
        requireActivation(out, "attention out");
        requireActivation(q, "attention q");
        requireActivation(kCache, "attention kCache");
        OpShapes.attention(out, q, kCache, vCache, metadata);
        attend(out, q, kCache, vCache, metadata, scale, null);
    }

    /** Attention over a checked cache of the activation type (scales null) or FP8. */
    private void attend(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata, float scale,
            KvCacheScales scales) {
        long numQHeads = q.size(1);
        long headDim = q.size(2);
        long numKvHeads = kCache.size(2);
        int seqs = metadata.numSeqs();
        if (metadata.maxQueryLen() == 1 && metadata.numTokens() == seqs) {
            attendDecodes(out, q, kCache, vCache, metadata, scale, seqs, scales);
            return;
        }
        // A mixed step: its leading one-token queries go to the decode kernel (which reads each
        // kv head's context once for its whole group of query heads), the prompt chunks after them
        // to the prefill kernel. The prefill kernel run over the decodes too pads each of them to
        // a tile of query rows and reads the context once per query head: in a step of 256
        // decodes and one prompt chunk that took three times the decode step.
        // (Where the kernels run their fp32 fallback, it takes the whole batch instead.)
        int decodes = KilnCuda.kiln_cuda_attention_uses_tensor_cores(activation.code, headDim) == 1
                ? metadata.numDecodeSeqs() : 0;
        if (decodes > 0) {
            attendDecodes(out, q, kCache, vCache, metadata, scale, decodes, scales);
        }
        long i32 = DType.I32.bytes;
        // query_start keeps absolute row offsets, so the prompt chunks' rows are found from q's and
        // out's first row; only the per-sequence arrays start at the first prompt chunk.
        long blockTables = metadata.blockTables().address() + decodes * (long) metadata.maxBlocksPerSeq() * i32;
        long queryStart = metadata.queryStart().address() + decodes * i32;
        long seqLens = metadata.seqLens().address() + decodes * i32;
        checkKernel(scales == null
                ? KilnCuda.kiln_cuda_attention_prefill(out.address(), out.rowStride(), q.address(), q.rowStride(),
                        kCache.address(), vCache.address(), blockTables, metadata.maxBlocksPerSeq(), queryStart,
                        seqLens, seqs - decodes, metadata.numTokens() - decodes, metadata.maxQueryLen(), numQHeads,
                        numKvHeads, headDim, kCache.size(1), kCache.size(0), scale, activation.code, streamAddress())
                : KilnCuda.kiln_cuda_attention_prefill_e4m3(out.address(), out.rowStride(), q.address(),
                        q.rowStride(), kCache.address(), vCache.address(), scales.k().address(),
                        scales.v().address(), blockTables, metadata.maxBlocksPerSeq(), queryStart, seqLens,
                        seqs - decodes, metadata.numTokens() - decodes, metadata.maxQueryLen(), numQHeads,
                        numKvHeads, headDim, kCache.size(1), kCache.size(0), scale, activation.code,
                        streamAddress()));
    }

    /**
     * The decode kernel over the first {@code numSeqs} sequences, one query row each (rows 0 ..
     * numSeqs - 1), over a cache of the activation type (scales null) or FP8.
     */
    private void attendDecodes(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata,
            float scale, int numSeqs, KvCacheScales scales) {
        long numQHeads = q.size(1);
        long headDim = q.size(2);
        long numKvHeads = kCache.size(2);
        long need = KilnCuda.kiln_cuda_attention_decode_workspace_size(numSeqs, numQHeads, numKvHeads, headDim,
                metadata.maxSeqLen());
        decodeWorkspace.ensure(need);
        checkKernel(scales == null
                ? KilnCuda.kiln_cuda_attention_decode(out.address(), out.rowStride(), q.address(), q.rowStride(),
                        kCache.address(), vCache.address(), metadata.blockTables().address(),
                        metadata.maxBlocksPerSeq(), metadata.seqLens().address(), numSeqs, metadata.maxSeqLen(),
                        numQHeads, numKvHeads, headDim, kCache.size(1), kCache.size(0), scale,
                        decodeWorkspace.address(), decodeWorkspace.bytes(), activation.code, streamAddress())
                : KilnCuda.kiln_cuda_attention_decode_e4m3(out.address(), out.rowStride(), q.address(),
                        q.rowStride(), kCache.address(), vCache.address(), scales.k().address(),
                        scales.v().address(), metadata.blockTables().address(), metadata.maxBlocksPerSeq(),
                        metadata.seqLens().address(), numSeqs, metadata.maxSeqLen(), numQHeads, numKvHeads, headDim,
                        kCache.size(1), kCache.size(0), scale, decodeWorkspace.address(), decodeWorkspace.bytes(),
                        activation.code, streamAddress()));
    }

    @Override
    public void reserveAttention(int maxSeqs, int numQHeads, int numKvHeads, int headDim, int maxSeqLen) {
        long need = 0;
        for (int seqs = 1; seqs <= maxSeqs; seqs++) {
            need = Math.max(need, KilnCuda.kiln_cuda_attention_decode_workspace_size(seqs, numQHeads, numKvHeads,
                    headDim, maxSeqLen));
        }
        decodeWorkspace.ensure(need);
    }

    /**
     * Device scratch in which kernels keep counters: zero-filled when allocated (the kernels leave
     * their counters at zero after every call). It only grows, in powers of two, and never during a
     * capture. Graphs keep the address they were recorded with, so scratch that graphs read
     * refuses to grow once any exist ({@link #reserveAttention} sizes the decode attention's for
     * every step up front).
     */
    private final class Workspace {
        private final String what;
        private final long minBytes;
        private final boolean readByGraphs;
        private Pointer pointer;
        private long bytes;

        Workspace(String what, long minBytes, boolean readByGraphs) {
            this.what = what;
            this.minBytes = minBytes;
            this.readByGraphs = readByGraphs;
        }

        void ensure(long need) {
            if (need <= bytes) {
                return;
            }
            if (capturing || (readByGraphs && !graphs.isEmpty())) {
                throw new BackendException(what + " must grow from " + bytes + " to " + need
                        + " bytes after graphs were recorded; it must be sized before the first capture");
            }
            synchronize(); // the old buffer may still be read by queued kernels
            free();
            long rounded = Math.max(minBytes, Long.highestOneBit(need - 1) << 1);
            pointer = deviceMalloc(rounded, what);
            check(cudaMemsetAsync(pointer, 0, rounded, stream), "cudaMemsetAsync");
            bytes = rounded;
        }

        long address() {
            return pointer == null ? 0 : pointer.address();
        }

        long bytes() {
            return bytes;
        }

        void free() {
            if (pointer != null) {
                cudaFree(pointer);
                pointer = null;
                bytes = 0;
            }
        }
    }

    @Override
    public void gatherRows(Tensor out, Tensor in, Tensor rows) {
        requireActivation(out, "gatherRows out");
        requireActivation(in, "gatherRows in");
        requireDType(rows, DType.I32, "gatherRows rows");
        OpShapes.gatherRows(out, in, rows);
        checkKernel(KilnCuda.kiln_cuda_gather_rows(out.address(), in.address(), in.rowStride(), rows.address(),
                out.rows(), in.rows(), in.rowElements(), activation.code, streamAddress()));
    }

    @Override
    public void argmax(Tensor logits, Tensor ids, Tensor logprobs) {
        requireDType(ids, DType.I32, "argmax ids");
        OpShapes.argmax(logits, ids, logprobs);
        long batch = logits.rows();
        long vocab = logits.rowElements();
        argmaxWorkspace.ensure(KilnCuda.kiln_cuda_argmax_workspace_size(batch, vocab));
        checkKernel(KilnCuda.kiln_cuda_argmax(logits.address(), logits.rowStride(), logits.dtype().code, batch, vocab,
                ids.address(), logprobs == null ? 0 : logprobs.address(), argmaxWorkspace.address(),
                argmaxWorkspace.bytes(), streamAddress()));
    }

    @Override
    public void sample(Tensor logits, Tensor rows, Tensor penalties, Tensor ids, Tensor logprobs) {
        OpShapes.sample(logits, rows, penalties, ids, logprobs);
        checkKernel(KilnCuda.kiln_cuda_sample(logits.address(), logits.rows(), logits.rowElements(), rows.address(),
                penalties == null ? 0 : penalties.address(), penalties == null ? 0 : penalties.size(0), ids.address(),
                logprobs == null ? 0 : logprobs.address(), streamAddress()));
    }

    @Override
    public void resetPenaltyRow(Tensor penalties, int row, Tensor ids, int numPrompt, int numOutput,
            int numSuppressed) {
        OpShapes.resetPenaltyRow(penalties, row, ids, numPrompt, numOutput, numSuppressed);
        checkKernel(KilnCuda.kiln_cuda_reset_penalty_row(penalties.address(), penalties.size(0), penalties.size(1),
                row, ids.address(), numPrompt, numOutput, numSuppressed, streamAddress()));
    }

    // ---- graphs ------------------------------------------------------------------------------

    @Override
    public boolean supportsGraphs() {
        return true;
    }

    @Override
    public void beginCapture() {
        if (capturing) {
            throw new BackendException("a graph capture is already under way");
        }
        // Thread-local mode: other threads' CUDA calls (metrics reading free memory, say) stay legal.
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        capturing = true;
    }

    @Override
    public long endCapture() {
        if (!capturing) {
            throw new BackendException("no graph capture is under way");
        }
        capturing = false;
        CUgraph_st graph = new CUgraph_st();
        check(cudaStreamEndCapture(stream, graph), "cudaStreamEndCapture");
        CUgraphExec_st executable = new CUgraphExec_st();
        try {
            check(cudaGraphInstantiate(executable, graph, 0), "cudaGraphInstantiate");
        } finally {
            cudaGraphDestroy(graph);
        }
        long handle = nextGraphHandle++;
        graphs.put(handle, executable);
        return handle;
    }

    @Override
    public void replay(long graph) {
        CUgraphExec_st executable = graphs.get(graph);
        if (executable == null) {
            throw new BackendException("no graph " + graph);
        }
        check(cudaGraphLaunch(executable, stream), "cudaGraphLaunch");
    }

    @Override
    public void releaseGraph(long graph) {
        CUgraphExec_st executable = graphs.remove(graph);
        if (executable != null) {
            cudaGraphExecDestroy(executable);
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        cudaStreamSynchronize(stream);
        graphs.values().forEach(org.bytedeco.cuda.global.cudart::cudaGraphExecDestroy);
        graphs.clear();
        for (Pointer pointer : allocations.values()) {
            cudaFree(pointer);
        }
        allocations.clear();
        decodeWorkspace.free();
        argmaxWorkspace.free();
        if (fp8 != null) {
            fp8.close();
        }
        scratch.values().forEach(org.bytedeco.cuda.global.cudart::cudaFree);
        scratch.clear();
        cudaFree(cublasWorkspace);
        for (int i = 0; i < 2; i++) {
            cudaFreeHost(staging[i]);
            cudaEventDestroy(stagingFree[i]);
        }
        cudaFreeHost(stepPinned);
        cublasDestroy_v2(cublas);
        cudaStreamDestroy(stream);
        one.close();
        zero.close();
    }

    // ---- checks ------------------------------------------------------------------------------

    /** A JavaCPP pointer to an address that Java tracks itself (device or pinned memory). */
    static final class RawPointer extends Pointer {
        RawPointer(long address) {
            this.address = address;
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new BackendException("the CUDA backend is closed");
        }
    }

    private static String errorString(int status) {
        return cudaGetErrorString(status).getString();
    }

    private static void check(int status, String what) {
        if (status != 0) {
            throw new BackendException(what + " failed: " + errorString(status));
        }
    }

    private static void checkCublas(int status, String what) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new BackendException(what + " failed with cuBLAS status " + status);
        }
    }

    static void checkKernel(int status) {
        if (status != 0) {
            throw new BackendException("CUDA op failed: " + KilnCuda.kiln_cuda_last_error());
        }
    }

    /** The dtypes and shapes that rotary and the fused rotary + KV write take, named after op. */
    private void checkRotary(String op, Tensor q, Tensor k, Tensor positions, Tensor cosSin) {
        requireActivation(q, op + " q");
        requireActivation(k, op + " k");
        requireDType(positions, DType.I32, op + " positions");
        requireDType(cosSin, DType.F32, op + " cosSin");
        OpShapes.rotary(q, k, positions, cosSin);
    }

    /** The dtypes and shapes that the KV-cache writes take, named after op. */
    private void checkWriteKvCache(String op, Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping) {
        requireActivation(k, op + " k");
        requireActivation(v, op + " v");
        requireActivation(kCache, op + " kCache");
        requireActivation(vCache, op + " vCache");
        requireDType(slotMapping, DType.I32, op + " slotMapping");
        OpShapes.writeKvCache(k, v, kCache, vCache, slotMapping);
    }

    /** The dtypes and shapes that the writes into an FP8 KV cache take, named after op. */
    private void checkWriteFp8KvCache(String op, Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping,
            KvCacheScales scales) {
        requireActivation(k, op + " k");
        requireActivation(v, op + " v");
        KvCacheScales.requireFp8Cache(kCache, vCache, scales, op, "CUDA");
        requireDType(slotMapping, DType.I32, op + " slotMapping");
        OpShapes.writeKvCache(k, v, kCache, vCache, slotMapping);
    }

    private void requireActivation(Tensor tensor, String what) {
        requireDType(tensor, activation, what);
    }

    void requireActivationOf(Tensor tensor, String what) {
        requireActivation(tensor, what);
    }

    private static void requireDType(Tensor tensor, DType dtype, String what) {
        TensorChecks.requireDType(tensor, dtype, what, "CUDA");
    }

    // ---- structured output and logit bias ----------------------------------------------------

    @Override
    public void maskLogits(Tensor logits, Tensor masks, Tensor rows, int numRows) {
        OpShapes.maskLogits(logits, masks, rows, numRows);
        checkKernel(KilnCuda.kiln_cuda_mask_logits(logits.address(), logits.rows(), logits.rowElements(),
                masks.address(), rows.address(), numRows, streamAddress()));
    }

    @Override
    public void addLogitBias(Tensor logits, Tensor entries, int count) {
        OpShapes.addLogitBias(logits, entries, count);
        checkKernel(KilnCuda.kiln_cuda_add_logit_bias(logits.address(), logits.rows(), logits.rowElements(),
                entries.address(), count, streamAddress()));
    }
}
