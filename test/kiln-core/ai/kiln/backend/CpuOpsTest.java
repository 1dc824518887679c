package ai.kiln.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.NaiveAttention;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CPU backend ops against naive Java references (batched paged attention with GQA across several
 * sequences, the GEMM over every weight type at every kernel level the CPU runs, int8
 * quantisation), and every out-of-range index refused with a clear error instead of a
 * read or write out of bounds.
 */
class CpuOpsTest {

    CpuBackend backend;
    final long seed = System.nanoTime();
    final SplittableRandom random = new SplittableRandom(seed);

    @BeforeEach
    void open() {
        backend = new CpuBackend(2, 1L << 28);
    }

    @AfterEach
    void close() {
        backend.close();
    }

    private Tensor randomFloats(long... shape) {
        Tensor tensor = backend.allocate(DType.F32, shape);
        float[] values = new float[(int) tensor.numel()];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextDouble() * 2 - 1);
        }
        Tensor host = HostTensors.floats(values, shape);
        backend.upload(tensor, host);
        HostTensors.release(host);
        return tensor;
    }

    private Tensor ints(int... values) {
        Tensor tensor = backend.allocate(DType.I32, values.length);
        backend.copyFromHost(tensor, values, values.length);
        return tensor;
    }

    private float[] read(Tensor tensor) {
        float[] out = new float[(int) tensor.numel()];
        backend.copyToHost(tensor, out, out.length);
        return out;
    }

    @Test
    void pagedAttentionOverSeveralSequencesMatchesNaiveAttention() {
        int hq = 8, hk = 2, d = 16, blockSize = 4, numBlocks = 24, maxBlocks = 8;
        // Three sequences: a chunk of 5 new tokens after 7 cached, a 1-token decode after 12, a fresh 9-token prompt.
        int[] queryLens = {5, 1, 9};
        int[] seqLens = {12, 13, 9};
        int[][] tables = {{3, 9, 1, 0, 0, 0, 0, 0}, {20, 2, 17, 5, 0, 0, 0, 0}, {11, 12, 4, 0, 0, 0, 0, 0}};
        int tokens = 15;
        Tensor q = randomFloats(tokens, hq, d);
        Tensor kCache = randomFloats(numBlocks, blockSize, hk, d);
        Tensor vCache = randomFloats(numBlocks, blockSize, hk, d);
        Tensor out = backend.allocate(DType.F32, tokens, hq, d);
        int[] flat = new int[3 * maxBlocks];
        for (int s = 0; s < 3; s++) {
            System.arraycopy(tables[s], 0, flat, s * maxBlocks, maxBlocks);
        }
        Tensor blockTables = ints(flat);
        AttentionMetadata metadata = new AttentionMetadata(blockTables, ints(0, 5, 6, 15), ints(seqLens), 3, tokens,
                maxBlocks, 9, 13);
        float scale = 0.25f;
        backend.attention(out, q, kCache, vCache, metadata, scale);

        float[] actual = read(out);
        double[] expected = NaiveAttention.attend(read(q), read(kCache), read(vCache), tables, queryLens, seqLens, hq,
                hk, d, blockSize, scale);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5, "seed " + seed + " token " + i / (hq * d) + " head "
                    + i / d % hq + " dim " + i % d);
        }
    }

    /** The GEMM kernel levels this CPU runs: 4 (AVX-512), 3 (AVX2), 0 (SSE2). */
    static List<Integer> supportedGemmLevels() {
        KilnCpu.ensureLoaded();
        List<Integer> levels = new ArrayList<>();
        for (int level : new int[] {4, 3, 0}) {
            if (KilnCpu.kiln_cpu_set_gemm_level(level) == 0) {
                levels.add(level);
            }
        }
        KilnCpu.kiln_cpu_set_gemm_level(-1);
        return levels;
    }

    static Stream<Arguments> gemmCases() {
        List<Arguments> cases = new ArrayList<>();
        for (int level : supportedGemmLevels()) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16, DType.I8}) {
                for (int m : new int[] {1, 2, 3, 4, 5, 9, 16, 33, 47, 300}) {
                    cases.add(Arguments.of(level, dtype, m));
                }
            }
        }
        return cases.stream();
    }

    /**
     * Every kernel level the CPU runs, every weight type, against a float64 product of the values
     * the weights hold. Up to 4 activation rows the weights are widened in registers; from 5 on the
     * rows are packed into panels (in chunks of 256 rows) and each block of weights is widened to
     * fp32 once: both paths, with k = 70 not a multiple of any vector width, n = 37 not of any
     * tile's rows, and row counts that leave partial panels and a second chunk (the tails).
     */
    @ParameterizedTest(name = "level {0}, {1} weights, m={2}")
    @MethodSource("gemmCases")
    void gemmWithBiasMatchesNaiveProduct(int level, DType dtype, int m) {
        int n = 37, k = 70;
        Tensor x = randomFloats(m, k);
        Tensor wF32 = randomFloats(n, k);
        Tensor bias = randomFloats(n);
        Tensor w;
        Tensor scales = null;
        float[] wv;
        if (dtype == DType.I8) {
            w = backend.allocate(DType.I8, n, k);
            scales = backend.allocate(DType.F32, n);
            backend.quantizeRows(w, scales, wF32);
            wv = dequantized(w, scales);
        } else {
            w = backend.allocate(dtype, n, k);
            backend.upload(w, wF32);
            Tensor wRounded = backend.allocate(DType.F32, n, k);
            backend.upload(wRounded, w); // back to f32: the values the GEMM multiplies by
            wv = read(wRounded);
        }
        Tensor out = backend.allocate(DType.F32, m, n);
        assertEquals(0, KilnCpu.kiln_cpu_set_gemm_level(level), KilnCpu.kiln_last_error());
        try {
            backend.gemm(out, x, w, scales, bias);
        } finally {
            KilnCpu.kiln_cpu_set_gemm_level(-1);
        }
        float[] xv = read(x), bv = read(bias), actual = read(out);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double expected = bv[j];
                for (int e = 0; e < k; e++) {
                    expected += (double) xv[i * k + e] * wv[j * k + e];
                }
                assertEquals(expected, actual[i * n + j], 1e-4, "seed " + seed + " at " + i + "," + j);
            }
        }
    }

    /** w [n, k] I8 with scales [n] as the fp32 values it stands for, read through a product with the identity. */
    private float[] dequantized(Tensor w, Tensor scales) {
        int n = (int) w.size(0), k = (int) w.size(1);
        float[] eye = new float[k * k];
        for (int i = 0; i < k; i++) {
            eye[i * k + i] = 1;
        }
        Tensor identity = backend.allocate(DType.F32, k, k);
        Tensor host = HostTensors.floats(eye, k, k);
        backend.upload(identity, host);
        HostTensors.release(host);
        Tensor transposed = backend.allocate(DType.F32, k, n); // [e][j] = q[j][e] * scale[j], exactly
        backend.gemm(transposed, identity, w, scales, null);
        float[] t = read(transposed);
        float[] values = new float[n * k];
        for (int j = 0; j < n; j++) {
            for (int e = 0; e < k; e++) {
                values[j * k + e] = t[e * n + j];
            }
        }
        return values;
    }

    /** Each row's largest magnitude maps to 127 and every value rounds to its nearest step. */
    @Test
    void int8RowsQuantiseToTheNearestStep() {
        int n = 19, k = 45;
        Tensor w = randomFloats(n, k);
        float[] original = read(w);
        // A row of zeros has scale 0 and stays zero.
        for (int e = 0; e < k; e++) {
            original[3 * k + e] = 0;
        }
        Tensor host = HostTensors.floats(original, n, k);
        Tensor q = backend.allocate(DType.I8, n, k);
        Tensor scales = backend.allocate(DType.F32, n);
        backend.quantizeRows(q, scales, host);
        HostTensors.release(host);
        float[] scale = read(scales);
        float[] values = dequantized(q, scales);
        for (int j = 0; j < n; j++) {
            double max = 0;
            for (int e = 0; e < k; e++) {
                max = Math.max(max, Math.abs(original[j * k + e]));
            }
            assertEquals(max / 127, scale[j], 1e-7, "row " + j);
            for (int e = 0; e < k; e++) {
                assertEquals(original[j * k + e], values[j * k + e], scale[j] / 2 * 1.0001 + 1e-9,
                        "seed " + seed + " at " + j + "," + e);
            }
        }
    }

    @Test
    void quantisedWeightsNeedTheirScales() {
        Tensor w = backend.allocate(DType.I8, 4, 8);
        Tensor x = randomFloats(1, 8);
        Tensor out = backend.allocate(DType.F32, 1, 4);
        assertRefused(() -> backend.gemm(out, x, w, null), "needs their scales");
        assertRefused(() -> backend.gemm(out, x, w, randomFloats(3), null), "one scale per row");
        Tensor bad = HostTensors.floats(new float[] {1, Float.NaN, 0, 0, 0, 0, 0, 0}, 1, 8);
        try {
            assertRefused(() -> backend.quantizeRows(backend.allocate(DType.I8, 1, 8), backend.allocate(DType.F32, 1), bad),
                    "row 0 holds a NaN or infinite value");
        } finally {
            HostTensors.release(bad);
        }
    }

    private static void assertRefused(Runnable op, String fragment) {
        BackendException error = assertThrows(BackendException.class, op::run);
        assertTrue(error.getMessage().contains(fragment), error.getMessage());
    }

    @Test
    void outOfRangeIndicesAreRefused() {
        Tensor table = randomFloats(10, 4);
        Tensor out = backend.allocate(DType.F32, 2, 4);
        assertRefused(() -> backend.embedding(out, table, ints(3, 10)), "token id 10 at position 1 is outside the vocabulary [0, 10)");
        assertRefused(() -> backend.embedding(out, table, ints(-1, 0)), "token id -1");

        Tensor k = randomFloats(2, 1, 4);
        Tensor cache = randomFloats(2, 4, 1, 4); // 8 slots
        assertRefused(() -> backend.writeKvCache(k, k, cache, cache, ints(0, 8)), "slot 8 of token 1 is outside [-1, 8)");
        backend.writeKvCache(k, k, cache, cache, ints(-1, 7)); // padding slot is fine

        Tensor cosSin = randomFloats(16, 4);
        assertRefused(() -> backend.rotary(k, k, ints(0, 16), cosSin, true), "position 16 of token 1 is outside [0, 16)");

        Tensor q = randomFloats(2, 1, 4);
        Tensor attnOut = backend.allocate(DType.F32, 2, 1, 4);
        AttentionMetadata badBlock = new AttentionMetadata(ints(0, 2), ints(0, 2), ints(6), 1, 2, 2, 2, 6);
        assertRefused(() -> backend.attention(attnOut, q, cache, cache, badBlock, 1f), "block table entry 1 is 2");
        AttentionMetadata tooLong = new AttentionMetadata(ints(0, 1), ints(0, 2), ints(9), 1, 2, 2, 2, 9);
        assertRefused(() -> backend.attention(attnOut, q, cache, cache, tooLong, 1f), "do not fit");
        AttentionMetadata queryPastContext = new AttentionMetadata(ints(0, 1), ints(0, 2), ints(1), 1, 2, 2, 2, 1);
        assertRefused(() -> backend.attention(attnOut, q, cache, cache, queryPastContext, 1f), "do not fit");

        assertRefused(() -> backend.gatherRows(backend.allocate(DType.F32, 1, 4), out, ints(2)), "row 2 is outside [0, 2)");
        assertRefused(() -> backend.gemm(out, out, table, null), "shapes do not fit");
    }

    @Test
    void memoryBudgetIsEnforced() {
        BackendException error = assertThrows(BackendException.class, () -> backend.allocate(DType.F32, 1L << 27));
        assertTrue(error.getMessage().contains("out of memory on the CPU backend"), error.getMessage());
    }
}
