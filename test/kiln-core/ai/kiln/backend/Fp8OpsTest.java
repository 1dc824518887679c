package ai.kiln.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CPU's FP8 ops against a naive Java e4m3: conversion (every code, the ties, subnormals,
 * saturation at 448, NaN), the quantisation of input rows (bit for bit) and the FP8 GEMM over
 * random shapes in every input mode at every kernel level the CPU runs. The naive rounding finds
 * the nearest of the 127 finite magnitudes by search, so it shares nothing with the native bit
 * arithmetic.
 */
class Fp8OpsTest {

    /** The finite non-negative e4m3 values, by code 0x00..0x7e. */
    private static final double[] MAGNITUDES = new double[0x7f];

    static {
        for (int code = 0; code < 0x7f; code++) {
            int exponent = code >> 3;
            int mantissa = code & 7;
            MAGNITUDES[code] = exponent == 0 ? mantissa * Math.pow(2, -9) : (1 + mantissa / 8.0) * Math.pow(2, exponent - 7);
        }
    }

    CpuBackend backend;
    final long seed = System.nanoTime();
    final SplittableRandom random = new SplittableRandom(seed);

    @BeforeEach
    void open() {
        backend = new CpuBackend(2, 1L << 26);
    }

    @AfterEach
    void close() {
        backend.close();
    }

    /** The e4m3 code of a float: nearest value, ties to the even code, beyond 448 saturated, NaN kept. */
    static int naiveEncode(float value) {
        int sign = (Float.floatToRawIntBits(value) >>> 24) & 0x80;
        if (Float.isNaN(value)) {
            return sign | 0x7f;
        }
        double magnitude = Math.abs((double) value);
        int best = 0;
        for (int code = 1; code < MAGNITUDES.length; code++) {
            double distance = Math.abs(MAGNITUDES[code] - magnitude);
            double bestDistance = Math.abs(MAGNITUDES[best] - magnitude);
            if (distance < bestDistance || (distance == bestDistance && (code & 1) == 0)) {
                best = code;
            }
        }
        return sign | best;
    }

    static float naiveDecode(int code) {
        if ((code & 0x7f) == 0x7f) {
            return Float.NaN;
        }
        float magnitude = (float) MAGNITUDES[code & 0x7f];
        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    private byte[] nativeEncode(float[] values) {
        Tensor host = HostTensors.floats(values, values.length);
        Tensor codes = backend.allocate(DType.F8_E4M3, values.length);
        try {
            assertEquals(0, KilnCpu.kiln_cpu_f32_to_e4m3(codes.address(), host.address(), values.length),
                    KilnCpu.kiln_last_error());
            byte[] out = new byte[values.length];
            KilnCpu.kiln_cpu_copy(out, codes.address(), values.length);
            return out;
        } finally {
            HostTensors.release(host);
            backend.free(codes);
        }
    }

    private Tensor uploadFloats(float[] values, long... shape) {
        Tensor tensor = backend.allocate(DType.F32, shape);
        Tensor host = HostTensors.floats(values, shape);
        backend.upload(tensor, host);
        HostTensors.release(host);
        return tensor;
    }

    /**
     * An FP8 KV cache: each (slot, KV head) row written gets the scale amax / 448 and the naive e4m3
     * codes of x * (1 / scale) (rows of very different magnitudes, a zero row, a row with a NaN), and
     * paged attention over it (GQA, a prompt chunk after cached tokens, a decode, a fresh prompt)
     * equals naive attention over the codes' values times their rows' scales.
     */
    @Test
    void anFp8KvCacheStoresEachRowWithItsScaleAndAttentionReadsThemBack() {
        int hq = 8, hk = 2, d = 16, blockSize = 4, numBlocks = 24, maxBlocks = 8;
        int slots = numBlocks * blockSize;
        float[] k = new float[slots * hk * d];
        float[] v = new float[slots * hk * d];
        for (int row = 0; row < slots * hk; row++) {
            double magnitude = Math.pow(10, random.nextInt(-4, 3)); // rows from 1e-4 to 100
            for (int c = 0; c < d; c++) {
                k[row * d + c] = (float) (random.nextGaussian() * magnitude);
                v[row * d + c] = (float) (random.nextGaussian() * magnitude);
            }
        }
        Arrays.fill(v, 3 * d, 4 * d, 0f); // a zero row: scale 0, codes 0
        int[] everySlot = new int[slots];
        Arrays.setAll(everySlot, i -> i);
        Tensor kCache = backend.allocate(DType.F8_E4M3, numBlocks, blockSize, hk, d);
        Tensor vCache = backend.allocate(DType.F8_E4M3, numBlocks, blockSize, hk, d);
        KvCacheScales scales = new KvCacheScales(backend.allocate(DType.F32, numBlocks, blockSize, hk),
                backend.allocate(DType.F32, numBlocks, blockSize, hk));
        Tensor slotMapping = backend.allocate(DType.I32, slots);
        backend.copyFromHost(slotMapping, everySlot, slots);
        backend.writeKvCache(uploadFloats(k, slots, hk, d), uploadFloats(v, slots, hk, d), kCache, vCache,
                slotMapping, scales);

        byte[] kCodes = new byte[k.length];
        byte[] vCodes = new byte[v.length];
        KilnCpu.kiln_cpu_copy(kCodes, kCache.address(), k.length);
        KilnCpu.kiln_cpu_copy(vCodes, vCache.address(), v.length);
        float[] kScales = new float[slots * hk];
        float[] vScales = new float[slots * hk];
        backend.copyToHost(scales.k(), kScales, kScales.length);
        backend.copyToHost(scales.v(), vScales, vScales.length);
        float[] kValues = new float[k.length];
        float[] vValues = new float[v.length];
        for (int row = 0; row < slots * hk; row++) {
            assertRowQuantised(k, kCodes, kScales, row, d, kValues);
            assertRowQuantised(v, vCodes, vScales, row, d, vValues);
        }
        assertEquals(0f, vScales[3]);

        int[] queryLens = {5, 1, 9};
        int[] seqLens = {12, 13, 9};
        int[][] tables = {{3, 9, 1, 0, 0, 0, 0, 0}, {20, 2, 17, 5, 0, 0, 0, 0}, {11, 12, 4, 0, 0, 0, 0, 0}};
        int tokens = 15;
        float[] q = new float[tokens * hq * d];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) (random.nextDouble() * 2 - 1) * 0.01f;
        }
        int[] flat = new int[3 * maxBlocks];
        for (int s = 0; s < 3; s++) {
            System.arraycopy(tables[s], 0, flat, s * maxBlocks, maxBlocks);
        }
        Tensor blockTables = backend.allocate(DType.I32, flat.length);
        backend.copyFromHost(blockTables, flat, flat.length);
        Tensor queryStart = backend.allocate(DType.I32, 4);
        backend.copyFromHost(queryStart, new int[] {0, 5, 6, 15}, 4);
        Tensor lens = backend.allocate(DType.I32, 3);
        backend.copyFromHost(lens, seqLens, 3);
        AttentionMetadata metadata = new AttentionMetadata(blockTables, queryStart, lens, 3, tokens, maxBlocks, 9, 13);
        Tensor out = backend.allocate(DType.F32, tokens, hq, d);
        float scale = 0.25f;
        backend.attention(out, uploadFloats(q, tokens, hq, d), kCache, vCache, metadata, scale, scales);
        float[] actual = new float[tokens * hq * d];
        backend.copyToHost(out, actual, actual.length);
        double[] expected = ai.kiln.testing.NaiveAttention.attend(q, kValues, vValues, tables, queryLens, seqLens, hq,
                hk, d, blockSize, scale);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5 * Math.max(1, Math.abs(expected[i])),
                    "seed " + seed + " element " + i);
        }

        // An FP8 cache without its scales is refused by name.
        BackendException refused = assertThrows(BackendException.class,
                () -> backend.attention(out, out, kCache, vCache, metadata, scale, null));
        assertTrue(refused.getMessage().contains("needs contiguous K and V scales"), refused.getMessage());
    }

    /** Row {@code row}: its scale amax / 448 and each code the naive e4m3 of x * (1 / scale); values into {@code values}. */
    private static void assertRowQuantised(float[] x, byte[] codes, float[] scales, int row, int d, float[] values) {
        float amax = 0;
        for (int c = 0; c < d; c++) {
            amax = Math.max(amax, Math.abs(x[row * d + c]));
        }
        float expectedScale = amax / 448f;
        if (expectedScale > 0 && expectedScale < Float.MIN_NORMAL) {
            expectedScale = Float.MIN_NORMAL;
        }
        assertEquals(expectedScale, scales[row], "row " + row + " scale");
        float inverse = expectedScale == 0 ? 0 : 1f / expectedScale;
        for (int c = 0; c < d; c++) {
            int i = row * d + c;
            assertEquals(expectedScale == 0 ? 0 : naiveEncode(x[i] * inverse), codes[i] & 0xff,
                    "row " + row + " element " + c + " = " + x[i]);
            values[i] = naiveDecode(codes[i] & 0xff) * scales[row];
        }
    }

    @Test
    void everyCodeDecodesToItsValue() {
        float[] values = new float[256];
        for (int code = 0; code < 256; code++) {
            values[code] = naiveDecode(code);
        }
        byte[] codes = nativeEncode(values); // finite values encode to themselves
        Tensor decoded = backend.allocate(DType.F32, 256);
        Tensor source = backend.allocate(DType.F8_E4M3, 256);
        Tensor host = HostTensors.floats(values, 256);
        assertEquals(0, KilnCpu.kiln_cpu_f32_to_e4m3(source.address(), host.address(), 256));
        HostTensors.release(host);
        assertEquals(0, KilnCpu.kiln_cpu_e4m3_to_f32(decoded.address(), source.address(), 256));
        float[] back = new float[256];
        backend.copyToHost(decoded, back, 256);
        for (int code = 0; code < 256; code++) {
            if ((code & 0x7f) == 0x7f) {
                assertTrue(Float.isNaN(back[code]), "code " + code + " is NaN");
                continue;
            }
            assertEquals(code, codes[code] & 0xff, "value " + values[code] + " encodes to its own code");
            assertEquals(Float.floatToRawIntBits(values[code]), Float.floatToRawIntBits(back[code]), "code " + code);
        }
    }

    @Test
    void roundingIsNearestEvenSaturatingAt448WithNaNKept() {
        List<Float> cases = new ArrayList<>(List.of(0f, -0f, 448f, -448f, 449f, 463.99f, 464f, 480f, 1e30f,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, -Float.NaN, Float.MIN_VALUE,
                (float) Math.pow(2, -10), (float) (3 * Math.pow(2, -10)), (float) (15 * Math.pow(2, -10)),
                (float) Math.pow(2, -6), -(float) Math.pow(2, -7)));
        // The midpoint of every pair of neighbours (a tie) and the floats either side of it.
        for (int code = 0; code + 1 < MAGNITUDES.length; code++) {
            float mid = (float) ((MAGNITUDES[code] + MAGNITUDES[code + 1]) / 2);
            cases.addAll(List.of(mid, Math.nextDown(mid), Math.nextUp(mid), -mid));
        }
        for (int i = 0; i < 2000; i++) {
            cases.add((float) ((random.nextDouble() * 2 - 1) * Math.pow(2, random.nextInt(-14, 11))));
        }
        float[] values = new float[cases.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = cases.get(i);
        }
        byte[] codes = nativeEncode(values);
        for (int i = 0; i < values.length; i++) {
            assertEquals(naiveEncode(values[i]), codes[i] & 0xff, "e4m3 of " + values[i] + " (seed " + seed + ")");
        }
    }

    /** Input rows quantised as the GEMM does, in Java: [m][k] e4m3 values, then [m] scales at index m. */
    private static float[][] naiveInputs(float[] x, int m, int k, InputQuantization inputs) {
        float[][] rows = new float[m + 1][];
        rows[m] = new float[m];
        for (int i = 0; i < m; i++) {
            float[] row = new float[k];
            if (inputs.mode() == InputQuantization.Mode.NONE) {
                System.arraycopy(x, i * k, row, 0, k);
                rows[m][i] = 1;
            } else {
                float scale = inputs.staticScale();
                if (inputs.mode() == InputQuantization.Mode.DYNAMIC_PER_TOKEN) {
                    float amax = 0;
                    for (int c = 0; c < k; c++) {
                        amax = Math.max(amax, Math.abs(x[i * k + c]));
                    }
                    if (inputs.scaleUpperBound() > 0) {
                        amax = Math.min(amax, inputs.scaleUpperBound());
                    }
                    scale = amax / 448f;
                }
                rows[m][i] = scale;
                float inverse = 1f / scale;
                for (int c = 0; c < k && scale != 0; c++) {
                    row[c] = naiveDecode(naiveEncode(x[i * k + c] * inverse));
                }
            }
            rows[i] = row;
        }
        return rows;
    }

    private Tensor upload(float[] values, long... shape) {
        Tensor host = HostTensors.floats(values, shape);
        Tensor tensor = backend.allocate(DType.F32, shape);
        backend.upload(tensor, host);
        HostTensors.release(host);
        return tensor;
    }

    private float[] read(Tensor tensor) {
        float[] out = new float[(int) tensor.numel()];
        backend.copyToHost(tensor, out, out.length);
        return out;
    }

    private float[] randoms(int count, double magnitude) {
        float[] values = new float[count];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) ((random.nextDouble() * 2 - 1) * magnitude);
        }
        return values;
    }

    private List<InputQuantization> modes(float[] x) {
        float amax = 0;
        for (float v : x) {
            amax = Math.max(amax, Math.abs(v));
        }
        // A static scale that leaves the largest values beyond 448 (saturated), and a bound that clamps.
        return List.of(InputQuantization.WEIGHT_ONLY, InputQuantization.DYNAMIC, InputQuantization.dynamicPerToken(amax / 2),
                InputQuantization.staticPerTensor(amax / 448f * 0.8f));
    }

    /** The GEMM levels this CPU runs: 4 (AVX-512), 3 (AVX2), 0 (SSE2). */
    private static List<Integer> gemmLevels() {
        List<Integer> levels = new ArrayList<>();
        for (int level : new int[] {4, 3, 0}) {
            if (KilnCpu.kiln_cpu_set_gemm_level(level) == 0) {
                levels.add(level);
            }
        }
        KilnCpu.kiln_cpu_set_gemm_level(-1);
        return levels;
    }

    /**
     * Random shapes (odd n and k, m across the decode tiles and past them), every input mode, a
     * bias or none, against a float64 sum of the same e4m3 products. Each product of two e4m3
     * values is exact in fp32, so the only difference is the fp32 sum's rounding: bounded by
     * (k + 2) * 2^-24 * sum |terms| (the classic gamma_k bound, plus the scaling and the bias).
     */
    @Test
    void gemmMatchesANaiveProductOfTheSameE4m3Values() {
        for (int level : gemmLevels()) {
            for (int m : new int[] {1, 3, 4, 5, 13}) {
                int n = 1 + 2 * random.nextInt(3, 40);
                int k = 1 + 2 * random.nextInt(4, 60);
                float[] x = randoms(m * k, 4);
                x[0] = 0; // a zero and a row of zeros (scale 0)
                if (m > 2) {
                    Arrays.fill(x, k, 2 * k, 0f);
                }
                float[] wFloat = randoms(n * k, 1);
                float[] wScales = randoms(n, 0.01f);
                for (int j = 0; j < n; j++) {
                    wScales[j] = Math.abs(wScales[j]) + 1e-4f;
                }
                float[] bias = randoms(n, 1);
                Tensor xT = upload(x, m, k);
                Tensor wHost = HostTensors.floats(wFloat, n, k);
                Tensor w = backend.allocate(DType.F8_E4M3, n, k);
                assertEquals(0, KilnCpu.kiln_cpu_f32_to_e4m3(w.address(), wHost.address(), (long) n * k));
                HostTensors.release(wHost);
                float[] wq = new float[n * k];
                for (int i = 0; i < wq.length; i++) {
                    wq[i] = naiveDecode(naiveEncode(wFloat[i]));
                }
                Tensor scalesT = upload(wScales, n);
                Tensor biasT = upload(bias, n);
                Tensor out = backend.allocate(DType.F32, m, n);
                for (InputQuantization inputs : modes(x)) {
                    float[][] xq = naiveInputs(x, m, k, inputs);
                    assertInputsQuantisedExactly(xT, m, k, inputs, xq);
                    boolean withBias = random.nextBoolean();
                    assertEquals(0, KilnCpu.kiln_cpu_set_gemm_level(level));
                    try {
                        backend.gemm(out, xT, w, scalesT, inputs, withBias ? biasT : null);
                    } finally {
                        KilnCpu.kiln_cpu_set_gemm_level(-1);
                    }
                    float[] actual = read(out);
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double sum = 0, magnitude = 0;
                            for (int c = 0; c < k; c++) {
                                double term = (double) xq[i][c] * wq[j * k + c];
                                sum += term;
                                magnitude += Math.abs(term);
                            }
                            double scale = (float) (xq[m][i] * wScales[j]);
                            double expected = sum * scale + (withBias ? bias[j] : 0);
                            double bound = (k + 2) * 0x1p-24 * magnitude * scale + 0x1p-23 * Math.abs(expected) + 1e-30;
                            assertEquals(expected, actual[i * n + j], bound, "level " + level + ", " + inputs + ", m=" + m
                                    + " n=" + n + " k=" + k + " at " + i + "," + j + " (seed " + seed + ")");
                        }
                    }
                }
            }
        }
    }

    private void assertInputsQuantisedExactly(Tensor x, int m, int k, InputQuantization inputs, float[][] expected) {
        Tensor xq = backend.allocate(DType.F32, m, k);
        Tensor scales = backend.allocate(DType.F32, m);
        int mode = switch (inputs.mode()) {
            case NONE -> KilnCpu.KILN_FP8_INPUT_NONE;
            case DYNAMIC_PER_TOKEN -> KilnCpu.KILN_FP8_INPUT_DYNAMIC_PER_TOKEN;
            case STATIC_PER_TENSOR -> KilnCpu.KILN_FP8_INPUT_STATIC_PER_TENSOR;
        };
        assertEquals(0, KilnCpu.kiln_cpu_quantize_e4m3_inputs(xq.address(), scales.address(), x.address(), k, mode,
                inputs.staticScale(), inputs.scaleUpperBound(), m, k), KilnCpu.kiln_last_error());
        float[] values = read(xq), scale = read(scales);
        for (int i = 0; i < m; i++) {
            assertEquals(expected[m][i], scale[i], 0, inputs + " scale of row " + i);
            for (int c = 0; c < k; c++) {
                assertEquals(expected[i][c], values[i * k + c], 0, inputs + " at " + i + "," + c + " (seed " + seed + ")");
            }
        }
        backend.free(xq);
        backend.free(scales);
    }

    /** NOTE: a NaN or an infinity in a dynamically scaled row makes that row's outputs NaN, never finite. */
    @Test
    void aNonFiniteInputRowComesOutNaN() {
        int k = 9, n = 5;
        float[] x = randoms(3 * k, 1);
        x[2] = Float.NaN;
        x[k + 4] = Float.POSITIVE_INFINITY;
        Tensor wHost = HostTensors.floats(randoms(n * k, 1), n, k);
        Tensor w = backend.allocate(DType.F8_E4M3, n, k);
        Tensor scales = backend.allocate(DType.F32, n);
        backend.quantizeRows(w, scales, wHost);
        HostTensors.release(wHost);
        Tensor out = backend.allocate(DType.F32, 3, n);
        backend.gemm(out, upload(x, 3, k), w, scales, InputQuantization.DYNAMIC, null);
        float[] actual = read(out);
        for (int j = 0; j < n; j++) {
            assertTrue(Float.isNaN(actual[j]), "row 0 (NaN) at " + j);
            assertTrue(Float.isNaN(actual[n + j]), "row 1 (infinity) at " + j);
            assertTrue(Float.isFinite(actual[2 * n + j]), "row 2 at " + j);
        }
    }

    /**
     * A row whose largest magnitude / 448 is below the smallest normal float takes that float as
     * its scale: 1 / scale would otherwise overflow, and the row's zeros turn into NaN (0 * inf).
     */
    @Test
    void rowsOfTinyValuesGetTheSmallestNormalScaleAndStayFinite() {
        int k = 4, n = 3;
        float tiny = 1e-37f; // amax / 448 is about 2^-131, below the smallest normal 2^-126
        float[] x = {tiny, 0, -tiny, 0};
        Tensor wHost = HostTensors.floats(new float[] {tiny, 0, tiny, 0, 1, 2, 3, 4, 0, 0, 0, 0}, n, k);
        Tensor w = backend.allocate(DType.F8_E4M3, n, k);
        Tensor wScales = backend.allocate(DType.F32, n);
        backend.quantizeRows(w, wScales, wHost);
        HostTensors.release(wHost);
        assertArrayEquals(new float[] {Float.MIN_NORMAL, 4 / 448f, 0}, read(wScales), "weight scales");
        byte[] codes = new byte[n * k];
        KilnCpu.kiln_cpu_copy(codes, w.address(), n * k);
        for (int i = 0; i < codes.length; i++) {
            assertTrue((codes[i] & 0x7f) != 0x7f, "weight code " + i + " is NaN");
        }
        Tensor xq = backend.allocate(DType.F32, 1, k);
        Tensor xScales = backend.allocate(DType.F32, 1);
        Tensor xs = upload(x, 1, k);
        assertEquals(0, KilnCpu.kiln_cpu_quantize_e4m3_inputs(xq.address(), xScales.address(), xs.address(), k,
                KilnCpu.KILN_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 0, 1, k), KilnCpu.kiln_last_error());
        assertEquals(Float.MIN_NORMAL, read(xScales)[0], 0, "input scale");
        float[] values = read(xq);
        assertEquals(0, values[1], 0, "a zero stays zero");
        assertTrue(Float.isFinite(values[0]) && values[0] > 0, "the tiny value's code " + values[0]);
        Tensor out = backend.allocate(DType.F32, 1, n);
        backend.gemm(out, xs, w, wScales, InputQuantization.DYNAMIC, null);
        for (float value : read(out)) {
            assertTrue(Float.isFinite(value), "a finite row's product came out " + value);
        }
    }

    /** Each row's largest magnitude maps to 448, every value to its nearest e4m3 step of that scale. */
    @Test
    void weightRowsQuantiseToTheNearestE4m3() {
        int n = 11, k = 37;
        float[] values = randoms(n * k, 3);
        Arrays.fill(values, 2 * k, 3 * k, 0f); // a row of zeros: scale 0, codes 0
        Tensor host = HostTensors.floats(values, n, k);
        Tensor q = backend.allocate(DType.F8_E4M3, n, k);
        Tensor scales = backend.allocate(DType.F32, n);
        backend.quantizeRows(q, scales, host);
        HostTensors.release(host);
        byte[] codes = new byte[n * k];
        KilnCpu.kiln_cpu_copy(codes, q.address(), n * k);
        float[] scale = read(scales);
        for (int j = 0; j < n; j++) {
            float amax = 0;
            for (int c = 0; c < k; c++) {
                amax = Math.max(amax, Math.abs(values[j * k + c]));
            }
            assertEquals(amax / 448f, scale[j], 0, "row " + j);
            float inverse = scale[j] > 0 ? 1f / scale[j] : 0;
            for (int c = 0; c < k; c++) {
                assertEquals(naiveEncode(values[j * k + c] * inverse), codes[j * k + c] & 0xff, "at " + j + "," + c);
            }
        }
        Tensor bad = HostTensors.floats(new float[] {1, Float.NaN}, 1, 2);
        try {
            BackendException error = assertThrows(BackendException.class,
                    () -> backend.quantizeRows(backend.allocate(DType.F8_E4M3, 1, 2), backend.allocate(DType.F32, 1), bad));
            assertTrue(error.getMessage().contains("row 0 holds a NaN or infinite value"), error.getMessage());
        } finally {
            HostTensors.release(bad);
        }
    }

    @Test
    void fp8WeightsNeedTheirScalesAndInputQuantization() {
        Tensor w = backend.allocate(DType.F8_E4M3, 4, 8);
        Tensor x = upload(randoms(8, 1), 1, 8);
        Tensor out = backend.allocate(DType.F32, 1, 4);
        BackendException noInputs = assertThrows(BackendException.class,
                () -> backend.gemm(out, x, w, upload(randoms(4, 1), 4), null, null));
        assertTrue(noInputs.getMessage().contains("needs their input quantization"), noInputs.getMessage());
        BackendException noScales = assertThrows(BackendException.class,
                () -> backend.gemm(out, x, w, null, InputQuantization.DYNAMIC, null));
        assertTrue(noScales.getMessage().contains("needs their scales"), noScales.getMessage());
        assertThrows(IllegalArgumentException.class, () -> InputQuantization.staticPerTensor(0));
        assertThrows(IllegalArgumentException.class, () -> InputQuantization.staticPerTensor(Float.NaN));
    }
}
