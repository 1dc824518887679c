package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.backend.AttentionMetadata;
import ai.kiln.backend.HostTensors;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.NaiveAttention;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Attention of a mixed step on the CUDA backend, bf16, the Llama 3 8B head layout (32 query heads,
 * 8 kv heads, 128 dims), blocks of 16: its leading one-token queries go to the decode kernel, the
 * prompt chunks after them to the prefill kernel. Every output row is checked against attention
 * computed in double precision from the same bf16 inputs, and the split against the prefill kernel
 * over the whole batch (numDecodeSeqs 0).
 */
@Tag("gpu")
class CudaMixedAttentionTest {

    static final int HQ = 32, HK = 8, D = 128, BLOCK = 16, NUM_BLOCKS = 64, MAX_BLOCKS = 16;
    /** bf16 keeps 8 bits of mantissa: outputs of magnitude up to about 1 are off by up to 2^-8 each way. */
    static final double TOLERANCE = 1.5e-2;

    static CudaBackend backend;

    @BeforeAll
    static void open() {
        String reason = CudaBackend.unavailableReason();
        assumeTrue(reason == null, reason);
        backend = new CudaBackend(0, DType.BF16);
    }

    @AfterAll
    static void close() {
        if (backend != null) {
            backend.close();
        }
    }

    /** A value bf16 holds exactly, so that the host's reference sees what the device does. */
    static float bf16(double value) {
        int bits = Float.floatToIntBits((float) value);
        return Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000);
    }

    static float[] randomBf16(SplittableRandom random, int count) {
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = bf16(random.nextGaussian());
        }
        return values;
    }

    static Tensor upload(float[] values, DType dtype, long... shape) {
        Tensor tensor = backend.allocate(dtype, shape);
        Tensor host = HostTensors.floats(values, shape);
        backend.upload(tensor, host);
        HostTensors.release(host);
        return tensor;
    }

    static Tensor ints(int... values) {
        Tensor tensor = backend.allocate(DType.I32, values.length);
        backend.copyFromHost(tensor, values, values.length);
        return tensor;
    }

    /** The bf16 rows of {@code out} as floats: a product with the identity, accumulated in fp32 (exact). */
    static float[] read(Tensor out, int rows, Tensor identity) {
        Tensor wide = backend.allocate(DType.F32, rows, (long) HQ * D);
        backend.gemm(wide, out.reshape(rows, (long) HQ * D), identity, null);
        float[] values = new float[rows * HQ * D];
        backend.copyToHost(wide, values, values.length);
        backend.free(wide);
        return values;
    }

    @Test
    void decodesFirstThenPromptChunksMatchDoublePrecisionAttention() {
        SplittableRandom random = new SplittableRandom(11);
        // Four decodes (contexts 1, 17, 40 and 200), a prompt chunk of 37 tokens after 29 cached, a
        // decode that comes after the chunk (left to the prefill kernel), and a fresh prompt of 21.
        int[] queryLens = {1, 1, 1, 1, 37, 1, 21};
        int[] seqLens = {1, 17, 40, 200, 66, 5, 21};
        int numDecodeSeqs = 4;
        int seqs = queryLens.length;
        int[] queryStart = new int[seqs + 1];
        for (int s = 0; s < seqs; s++) {
            queryStart[s + 1] = queryStart[s] + queryLens[s];
        }
        int tokens = queryStart[seqs];
        // Each sequence's blocks: distinct, shuffled over the pool.
        int[] pool = random.ints(0, NUM_BLOCKS).distinct().limit(NUM_BLOCKS).toArray();
        int[][] tables = new int[seqs][MAX_BLOCKS];
        int next = 0;
        for (int s = 0; s < seqs; s++) {
            int used = (seqLens[s] + BLOCK - 1) / BLOCK;
            for (int b = 0; b < used; b++) {
                tables[s][b] = pool[next++ % NUM_BLOCKS];
            }
        }
        int[] flatTables = new int[seqs * MAX_BLOCKS];
        for (int s = 0; s < seqs; s++) {
            System.arraycopy(tables[s], 0, flatTables, s * MAX_BLOCKS, MAX_BLOCKS);
        }
        float[] qHost = randomBf16(random, tokens * HQ * D);
        float[] kHost = randomBf16(random, NUM_BLOCKS * BLOCK * HK * D);
        float[] vHost = randomBf16(random, NUM_BLOCKS * BLOCK * HK * D);
        float[] identityHost = new float[HQ * D * HQ * D];
        for (int i = 0; i < HQ * D; i++) {
            identityHost[i * HQ * D + i] = 1;
        }
        Tensor q = upload(qHost, DType.BF16, tokens, HQ, D);
        Tensor kCache = upload(kHost, DType.BF16, NUM_BLOCKS, BLOCK, HK, D);
        Tensor vCache = upload(vHost, DType.BF16, NUM_BLOCKS, BLOCK, HK, D);
        Tensor identity = upload(identityHost, DType.BF16, (long) HQ * D, (long) HQ * D);
        Tensor blockTables = ints(flatTables);
        Tensor queryStarts = ints(queryStart);
        Tensor lens = ints(seqLens);
        float scale = (float) (1 / Math.sqrt(D));
        int maxQueryLen = 37, maxSeqLen = 200;
        backend.reserveAttention(seqs, HQ, HK, D, 256);

        Tensor split = backend.allocate(DType.BF16, tokens, HQ, D);
        backend.attention(split, q, kCache, vCache, new AttentionMetadata(blockTables, queryStarts, lens, seqs, tokens,
                MAX_BLOCKS, maxQueryLen, maxSeqLen, numDecodeSeqs), scale);
        Tensor whole = backend.allocate(DType.BF16, tokens, HQ, D);
        backend.attention(whole, q, kCache, vCache, new AttentionMetadata(blockTables, queryStarts, lens, seqs, tokens,
                MAX_BLOCKS, maxQueryLen, maxSeqLen, 0), scale);
        float[] splitOut = read(split, tokens, identity);
        float[] wholeOut = read(whole, tokens, identity);

        double[] expected = NaiveAttention.attend(qHost, kHost, vHost, tables, queryLens, seqLens, HQ, HK, D, BLOCK,
                scale);
        for (int i = 0; i < expected.length; i++) {
            String where = "token " + i / (HQ * D) + " head " + i / D % HQ + " dim " + i % D;
            assertEquals(expected[i], splitOut[i], TOLERANCE, "split: " + where);
            assertEquals(expected[i], wholeOut[i], TOLERANCE, "prefill kernel alone: " + where);
        }
        for (Tensor t : new Tensor[] {q, kCache, vCache, identity, blockTables, queryStarts, lens, split, whole}) {
            backend.free(t);
        }
    }
}
