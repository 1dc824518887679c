package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.backend.Backend;
import ai.kiln.backend.BackendException;
import ai.kiln.backend.HostTensors;
import ai.kiln.backend.InputQuantization;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.model.Fp8FixtureTest;
import ai.kiln.model.WeightQuantization;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA backend's FP8 path against the CPU backend, its twin (kiln_cpu_gemm_f8's semantics):
 * weights quantised on the device bit-equal to the CPU's; products of every row count (the skinny
 * tensor-core kernel up to 16 rows, cuBLASLt's FP8 GEMM past that, the weight-only copy) within the
 * fp32 summation bound of the CPU's result on the same inputs, plus what each path adds (see
 * {@link #bound}); graph replays equal to eager runs; and the FP8 fixtures against their PyTorch
 * references with fp32 activations.
 */
@Tag("gpu")
class CudaFp8Test {

    @BeforeAll
    static void requireFp8Gpu() {
        String reason = CudaBackend.unavailableReason();
        if (reason == null && KilnCuda.kiln_cuda_supports_fp8() != 1) {
            reason = "the GPU is older than compute capability 8.9";
        }
        if (reason != null) {
            System.out.println("CudaFp8Test skipped: " + reason);
        }
        assumeTrue(reason == null, reason);
    }

    /** Random values that bf16 holds exactly, so that both backends quantise the same numbers. */
    private static float[] bf16Values(Random random, int count, double scale) {
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            int bits = Float.floatToIntBits((float) (random.nextGaussian() * scale));
            bits = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000;
            values[i] = Float.intBitsToFloat(bits);
        }
        return values;
    }

    private static Tensor upload(Backend backend, DType dtype, float[] values, long... shape) {
        Tensor host = HostTensors.floats(values, shape);
        try {
            Tensor tensor = backend.allocate(dtype, shape);
            backend.upload(tensor, host);
            return tensor;
        } finally {
            HostTensors.release(host);
        }
    }

    private static float[] download(Backend backend, Tensor f32) {
        float[] values = new float[Math.toIntExact(f32.numel())];
        backend.copyToHost(f32, values, values.length);
        return values;
    }

    /** Bytes of an F8_E4M3 tensor (numel a multiple of 4), read as ints. */
    private static int[] codes(Backend backend, Tensor tensor) {
        int[] words = new int[Math.toIntExact(tensor.numel() / 4)];
        backend.copyToHost(Tensor.of(tensor.address(), DType.I32, words.length), words, words.length);
        return words;
    }

    @Test
    void weightsQuantisedOnTheDeviceEqualTheCpuBackendsBitForBit() {
        Random random = new Random(7);
        int rows = 300;
        int cols = 4096;
        float[] weight = bf16Values(random, rows * cols, 0.05);
        for (int c = 0; c < cols; c++) {
            weight[c] = 0; // row 0: scale 0
        }
        weight[cols + 17] = 3e4f; // row 1: one large value
        try (CudaBackend gpu = new CudaBackend(0, DType.BF16); CpuBackend cpu = new CpuBackend(0, 1L << 30)) {
            Tensor host = HostTensors.floats(weight, rows, cols);
            try {
                Tensor gpuCodes = gpu.allocate(DType.F8_E4M3, rows, cols);
                Tensor gpuScales = gpu.allocate(DType.F32, rows);
                gpu.quantizeRows(gpuCodes, gpuScales, host);
                Tensor cpuCodes = cpu.allocate(DType.F8_E4M3, rows, cols);
                Tensor cpuScales = cpu.allocate(DType.F32, rows);
                cpu.quantizeRows(cpuCodes, cpuScales, host);
                assertArrayEquals(codes(cpu, cpuCodes), codes(gpu, gpuCodes));
                assertArrayEquals(download(cpu, cpuScales), download(gpu, gpuScales));
            } finally {
                HostTensors.release(host);
            }
        }
    }

    @Test
    void aWeightRowWithANanIsRefused() {
        float[] weight = new float[16 * 64];
        weight[3 * 64 + 5] = Float.NaN;
        try (CudaBackend gpu = new CudaBackend(0, DType.BF16)) {
            Tensor host = HostTensors.floats(weight, 16, 64);
            try {
                BackendException e = assertThrows(BackendException.class, () -> gpu.quantizeRows(
                        gpu.allocate(DType.F8_E4M3, 16, 64), gpu.allocate(DType.F32, 16), host));
                assertTrue(e.getMessage().contains("row 3"), e.getMessage());
            } finally {
                HostTensors.release(host);
            }
        }
    }

    static Stream<Arguments> products() {
        List<InputQuantization> inputs = List.of(InputQuantization.DYNAMIC, InputQuantization.dynamicPerToken(0.75f),
                InputQuantization.staticPerTensor(0.006f), InputQuantization.WEIGHT_ONLY);
        Stream.Builder<Arguments> cases = Stream.builder();
        for (DType activation : List.of(DType.F32, DType.BF16)) {
            for (int m : new int[] {1, 3, 8, 9, 16, 17, 64, 100, 128, 129, 257}) {
                for (InputQuantization input : inputs) {
                    cases.add(Arguments.of(activation, m, input, m % 2 == 1));
                }
            }
        }
        return cases.build();
    }

    /**
     * Hopper's FP8 tensor cores, as cuBLASLt's GEMM drives them, keep fewer bits than fp32 while they
     * add up products (DeepSeek-V3's report measures about 14): that GEMM's results differ from an
     * fp32 sum by up to 2^-13.5 of the terms' magnitudes with fp32 output and 2^-12.3 with bf16
     * output (the worst this test printed on an H200). This is its allowance, about twice that;
     * the narrow kernel's wgmma products (17 to 128 rows on Hopper) get the same. The skinny
     * kernel's mma.sync products are held to the fp32 bound alone.
     */
    static final double TENSOR_CORE_ACCUMULATION = 0x1p-11;

    /**
     * The largest difference allowed between a GPU product element and the CPU's: the order of an
     * fp32 sum, (k + 2) 2^-24 of the terms' magnitudes (x 1.2 for the inputs' e4m3 rounding), and
     * a bias's rounding; past the skinny kernel's rows, the tensor cores' accumulation; with bf16
     * activations (unit roundoff 2^-8): weight-only, each weight's rounding to bf16 (2^-8 of the
     * terms), and the output's rounding (2^-8 of the result; with a bias, which is added to the
     * bf16 product, 2^-8 of the product too).
     */
    static double bound(DType activation, int m, int k, InputQuantization inputs, double terms, double bias,
            double expected) {
        double bound = (k + 2) * 0x1p-24 * 1.2 * terms + 0x1p-24 * Math.abs(bias);
        if (inputs.mode() != InputQuantization.Mode.NONE && m > KilnCuda.KILN_CUDA_GEMV_F8_MAX_ROWS) {
            bound += TENSOR_CORE_ACCUMULATION * terms;
        }
        if (activation == DType.BF16) {
            bound += 0x1p-8 * (Math.abs(expected) + Math.abs(expected - bias));
            if (inputs.mode() == InputQuantization.Mode.NONE) {
                bound += 0x1p-8 * terms;
            }
        }
        return bound;
    }

    /**
     * out = x @ w^T on both backends from the same e4m3 weights and bf16-exact inputs: every
     * element within {@link #bound}. A missing or different input quantisation moves results by
     * about 2^-5 of their magnitude. The worst error / terms ratio is printed: the measurement
     * behind {@link #TENSOR_CORE_ACCUMULATION}.
     */
    @ParameterizedTest(name = "{0} m={1} {2} bias={3}")
    @MethodSource("products")
    void fp8ProductsMatchTheCpuBackend(DType activation, int m, InputQuantization inputs, boolean withBias) {
        int n = 200;
        int k = 256;
        Random random = new Random(31L * m + n);
        float[] x = bf16Values(random, m * k, 1.0);
        float[] weight = bf16Values(random, n * k, 0.05);
        float[] bias = bf16Values(random, n, 0.5);
        try (CudaBackend gpu = new CudaBackend(0, activation); CpuBackend cpu = new CpuBackend(0, 1L << 30)) {
            float[] expected = product(cpu, DType.F32, x, weight, bias, withBias, m, n, k, inputs);
            float[] got = product(gpu, activation, x, weight, bias, withBias, m, n, k, inputs);
            float[] terms = termMagnitudes(x, weight, m, n, k);
            double worst = 0;
            for (int i = 0; i < got.length; i++) {
                double error = Math.abs(got[i] - expected[i]);
                worst = Math.max(worst, error / terms[i]);
                double bound = bound(activation, m, k, inputs, terms[i], withBias ? bias[i % n] : 0, expected[i]);
                assertTrue(error <= bound, activation + " m=" + m + " " + inputs + ": element " + i + " is " + got[i]
                        + ", the CPU's " + expected[i] + " (bound " + bound + ")");
            }
            System.out.printf("CudaFp8Test %s m=%d %s bias=%s: worst |error| / terms = %.3g (2^%.1f)%n", activation, m,
                    inputs.mode(), withBias, worst, Math.log(worst) / Math.log(2));
        }
    }

    /**
     * The narrow kernel's plain form with K long enough to be split over blocks up to 32 rows (the
     * partial sums added by the last block), and its 64- and 128-token tiles (which the engine
     * leaves to cuBLASLt unless kiln.cuda.fp8NarrowMaxRows says otherwise), against the CPU:
     * within {@link #bound}.
     */
    @ParameterizedTest(name = "{0} m={1}")
    @MethodSource("ungatedNarrowProducts")
    void ungatedNarrowProductsMatchTheCpuBackend(DType activation, int m) {
        int n = 384;
        int k = 4096;
        Random random = new Random(17L * m);
        float[] x = bf16Values(random, m * k, 1.0);
        float[] weight = bf16Values(random, n * k, 0.05);
        float[] bias = bf16Values(random, n, 0.5);
        boolean withBias = activation == DType.BF16;
        System.setProperty("kiln.cuda.fp8NarrowMaxRows", "128");
        try (CudaBackend gpu = new CudaBackend(0, activation); CpuBackend cpu = new CpuBackend(0, 1L << 30)) {
            float[] expected = product(cpu, DType.F32, x, weight, bias, withBias, m, n, k, InputQuantization.DYNAMIC);
            float[] got = product(gpu, activation, x, weight, bias, withBias, m, n, k, InputQuantization.DYNAMIC);
            float[] terms = termMagnitudes(x, weight, m, n, k);
            for (int i = 0; i < got.length; i++) {
                double error = Math.abs(got[i] - expected[i]);
                double bound = bound(activation, m, k, InputQuantization.DYNAMIC, terms[i],
                        withBias ? bias[i % n] : 0, expected[i]);
                assertTrue(error <= bound, activation + " m=" + m + ": element " + i + " is " + got[i] + ", the CPU's "
                        + expected[i] + " (bound " + bound + ")");
            }
        } finally {
            System.clearProperty("kiln.cuda.fp8NarrowMaxRows");
        }
    }

    static Stream<Arguments> ungatedNarrowProducts() {
        return Stream.of(Arguments.of(DType.F32, 17), Arguments.of(DType.F32, 32), Arguments.of(DType.BF16, 24),
                Arguments.of(DType.F32, 64), Arguments.of(DType.BF16, 100), Arguments.of(DType.BF16, 128));
    }

    /** Runs the FP8 product on a backend: weights quantised there, out read back as F32. */
    private static float[] product(Backend backend, DType activation, float[] x, float[] weight, float[] bias,
            boolean withBias, int m, int n, int k, InputQuantization inputs) {
        Tensor host = HostTensors.floats(weight, n, k);
        try {
            Tensor w = backend.allocate(DType.F8_E4M3, n, k);
            Tensor scales = backend.allocate(DType.F32, n);
            backend.quantizeRows(w, scales, host);
            Tensor xs = upload(backend, activation, x, m, k);
            Tensor b = withBias ? upload(backend, activation, bias, n) : null;
            Tensor out = backend.allocate(DType.F32, m, n);
            if (activation == DType.F32 || b == null) {
                backend.gemm(out, xs, w, scales, inputs, withBias ? b : null);
                return download(backend, out);
            }
            // bf16 output (a bias needs it), widened to F32 by an exact copy: gathering every row.
            Tensor lowOut = backend.allocate(activation, m, n);
            backend.gemm(lowOut, xs, w, scales, inputs, b);
            return widened(backend, lowOut, m, n);
        } finally {
            HostTensors.release(host);
        }
    }

    /** A bf16 matrix's values as floats: multiplied by an identity through the float GEMM (exact). */
    private static float[] widened(Backend backend, Tensor low, int m, int n) {
        float[] identity = new float[n * n];
        for (int i = 0; i < n; i++) {
            identity[i * n + i] = 1;
        }
        Tensor eye = upload(backend, backend.activationDType(), identity, n, n);
        Tensor out = backend.allocate(DType.F32, m, n);
        backend.gemm(out, low, eye, null);
        return download(backend, out);
    }

    private static float[] termMagnitudes(float[] x, float[] weight, int m, int n, int k) {
        float[] terms = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int c = 0; c < k; c++) {
                    sum += Math.abs((double) x[i * k + c] * weight[j * k + c]);
                }
                terms[i * n + j] = (float) sum;
            }
        }
        return terms;
    }

    /**
     * The gated form (gate/up and SiLU-and-mul in one pass of the skinny kernel up to 16 rows and of
     * the narrow one up to 128 here on Hopper, apart past that) in fp32 against the CPU's product then
     * SiLU-and-mul: within the propagated bound of gate and up. At 17 rows K is long enough for the
     * narrow kernel to split it over blocks; 64 and 128 take its larger token tiles over a long K.
     */
    @ParameterizedTest(name = "m={0}")
    @MethodSource("gatedRows")
    void gatedFp8ProductsMatchTheCpuBackend(int m) {
        int inter = 96;
        int k = m == 17 || m >= 64 ? 2048 : 128;
        Random random = new Random(m);
        float[] x = bf16Values(random, m * k, 1.0);
        float[] weight = bf16Values(random, 2 * inter * k, 0.05);
        float[] expected;
        float[] got;
        try (CpuBackend cpu = new CpuBackend(0, 1L << 30)) {
            expected = gated(cpu, x, weight, m, inter, k);
        }
        // 64 and 128 rows on the narrow kernel's larger token tiles, not the engine's default.
        System.setProperty("kiln.cuda.fp8NarrowMaxRows", "128");
        try (CudaBackend gpu = new CudaBackend(0, DType.F32)) {
            got = gated(gpu, x, weight, m, inter, k);
        } finally {
            System.clearProperty("kiln.cuda.fp8NarrowMaxRows");
        }
        float[] terms = termMagnitudes(x, weight, m, 2 * inter, k);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < inter; j++) {
                // |d silu(g) u| <= |silu'(g)| |u| dg + |silu(g)| du, |silu'| <= 1.1, |silu(g)| <= |g|;
                // |g| and |u| are at most their terms' magnitudes (x 1.1 for the e4m3 rounding).
                double gateTerms = 1.1 * terms[i * 2 * inter + j];
                double upTerms = 1.1 * terms[i * 2 * inter + inter + j];
                double perTerm = (k + 2) * 0x1p-24
                        + (m > KilnCuda.KILN_CUDA_GEMV_F8_MAX_ROWS ? TENSOR_CORE_ACCUMULATION : 0);
                double gateError = perTerm * gateTerms;
                double upError = perTerm * upTerms;
                double bound = 1.2 * (1.1 * upTerms * gateError + gateTerms * upError)
                        + 0x1p-22 * Math.abs(expected[i * inter + j]);
                double error = Math.abs(got[i * inter + j] - expected[i * inter + j]);
                assertTrue(error <= bound, "m=" + m + " [" + i + ", " + j + "]: " + got[i * inter + j] + " vs "
                        + expected[i * inter + j] + " (bound " + bound + ")");
            }
        }
    }

    static Stream<Integer> gatedRows() {
        return Stream.of(1, 5, 8, 9, 16, 17, 40, 64, 128, 200);
    }

    private static float[] gated(Backend backend, float[] x, float[] weight, int m, int inter, int k) {
        Tensor host = HostTensors.floats(weight, 2L * inter, k);
        try {
            Tensor w = backend.allocate(DType.F8_E4M3, 2L * inter, k);
            Tensor scales = backend.allocate(DType.F32, 2L * inter);
            backend.quantizeRows(w, scales, host);
            Tensor xs = upload(backend, DType.F32, x, m, k);
            Tensor gateUp = backend.allocate(DType.F32, m, 2L * inter);
            Tensor out = backend.allocate(DType.F32, m, inter);
            backend.gemmSiluAndMul(out, xs, w, scales, InputQuantization.DYNAMIC, gateUp);
            return download(backend, out);
        } finally {
            HostTensors.release(host);
        }
    }

    /**
     * A recorded graph of FP8 products (skinny, narrow with K split, cuBLASLt; plain and gated) replays to the
     * eager results, and a second eager call to the first's bits.
     */
    @Test
    void graphReplaysOfFp8ProductsEqualEagerRuns() {
        int n = 256;
        int k = 4096;
        Random random = new Random(5);
        try (CudaBackend gpu = new CudaBackend(0, DType.BF16)) {
            Tensor host = HostTensors.floats(bf16Values(random, n * k, 0.05), n, k);
            Tensor w = gpu.allocate(DType.F8_E4M3, n, k);
            Tensor scales = gpu.allocate(DType.F32, n);
            try {
                gpu.quantizeRows(w, scales, host);
            } finally {
                HostTensors.release(host);
            }
            for (int m : new int[] {4, 16, 24, 48, 128, 200}) {
                Tensor x = upload(gpu, DType.BF16, bf16Values(random, m * k, 1.0), m, k);
                Tensor out = gpu.allocate(DType.F32, m, n);
                gpu.gemm(out, x, w, scales, InputQuantization.DYNAMIC, null);
                float[] eager = download(gpu, out);
                gpu.gemm(out, x, w, scales, InputQuantization.DYNAMIC, null);
                assertArrayEquals(eager, download(gpu, out), "m=" + m + ", a second eager call");
                gpu.beginCapture();
                gpu.gemm(out, x, w, scales, InputQuantization.DYNAMIC, null);
                long graph = gpu.endCapture();
                gpu.copyFromHost(Tensor.of(out.address(), DType.I32, m * n), new int[m * n], m * n);
                gpu.replay(graph);
                assertArrayEquals(eager, download(gpu, out), "m=" + m);
                gpu.releaseGraph(graph);
            }
            // The gated form over the same weights as 128 gate and 128 up rows: the narrow kernel
            // at 24 rows, K split over blocks (the split counters reset by each call); cuBLASLt at 100.
            for (int m : new int[] {24, 100}) {
                Tensor x = upload(gpu, DType.BF16, bf16Values(random, m * k, 1.0), m, k);
                Tensor gateUp = gpu.allocate(DType.BF16, m, n);
                Tensor out = gpu.allocate(DType.BF16, m, n / 2);
                Tensor bits = Tensor.of(out.address(), DType.I32, m * n / 4);
                gpu.gemmSiluAndMul(out, x, w, scales, InputQuantization.DYNAMIC, gateUp);
                int[] eager = new int[m * n / 4];
                gpu.copyToHost(bits, eager, eager.length);
                gpu.gemmSiluAndMul(out, x, w, scales, InputQuantization.DYNAMIC, gateUp);
                int[] again = new int[eager.length];
                gpu.copyToHost(bits, again, again.length);
                assertArrayEquals(eager, again, "gated m=" + m + ", a second eager call");
                gpu.beginCapture();
                gpu.gemmSiluAndMul(out, x, w, scales, InputQuantization.DYNAMIC, gateUp);
                long graph = gpu.endCapture();
                gpu.copyFromHost(bits, new int[eager.length], eager.length);
                gpu.replay(graph);
                int[] replayed = new int[eager.length];
                gpu.copyToHost(bits, replayed, replayed.length);
                assertArrayEquals(eager, replayed, "gated m=" + m);
                gpu.releaseGraph(graph);
            }
        }
    }

    /**
     * The FP8 fixtures on the GPU with fp32 activations, against PyTorch's FP8 numerics, within
     * the error the tensor cores give that reference itself (Fp8FixtureTest#runOnTensorCores).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.kiln.model.Fp8FixtureTest#checkpoints")
    void fp8FixturesMatchTheirReferences(String name) {
        Fp8FixtureTest.runOnTensorCores(name, WeightQuantization.NONE, () -> new CudaBackend(0, DType.F32));
    }

    @Test
    void quantizationFp8OnTheGpuMatchesItsEmulation() {
        Fp8FixtureTest.runOnTensorCores("llama3-gqa-bf16", WeightQuantization.FP8,
                () -> new CudaBackend(0, DType.F32));
    }
}
