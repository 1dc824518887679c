package ai.kiln.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's {@link Backend#maskLogits}: a clear bit makes its logit -inf, a set bit
 * leaves it as it was, rows no mask names are untouched; then argmax and sampling never choose a
 * masked id. (The CUDA twin is held to it by kiln_op_tests --filter mask_logits.)
 */
class MaskLogitsTest {

    CpuBackend backend;

    @BeforeEach
    void open() {
        backend = new CpuBackend(2, 1L << 26);
    }

    @AfterEach
    void close() {
        backend.close();
    }

    Tensor ints(int[] values, long... shape) {
        Tensor t = backend.allocate(DType.I32, shape);
        backend.copyFromHost(t, values, values.length);
        return t;
    }

    @Test
    void clearBitsBecomeMinusInfinityAndNothingElseChanges() {
        int batch = 4;
        int vocab = 75; // three mask words, the last partly used
        int words = 3;
        Random random = new Random(7);
        float[] values = new float[batch * vocab];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        Tensor logits = backend.allocate(DType.F32, batch, vocab);
        Tensor host = HostTensors.floats(values, batch, vocab);
        backend.upload(logits, host);
        HostTensors.release(host);
        int[] masks = new int[2 * words];
        for (int i = 0; i < masks.length; i++) {
            masks[i] = random.nextInt();
        }
        int[] rows = {2, 0}; // mask 0 for row 2, mask 1 for row 0; rows 1 and 3 unmasked
        backend.maskLogits(logits, ints(masks, 2, words), ints(rows, 2), 2);
        float[] got = new float[batch * vocab];
        backend.copyToHost(logits, got, got.length);
        int masked = 0;
        for (int b = 0; b < batch; b++) {
            int m = b == 2 ? 0 : b == 0 ? 1 : -1;
            for (int v = 0; v < vocab; v++) {
                boolean keep = m < 0 || (masks[m * words + v / 32] >>> (v % 32) & 1) != 0;
                float expected = keep ? values[b * vocab + v] : Float.NEGATIVE_INFINITY;
                assertEquals(expected, got[b * vocab + v], "row " + b + " id " + v);
                masked += keep ? 0 : 1;
            }
        }
        assertTrue(masked > 30, "about half of two rows masked: " + masked);

        Tensor ids = backend.allocate(DType.I32, batch);
        backend.argmax(logits, ids, null);
        int[] chosen = new int[batch];
        backend.copyToHost(ids, chosen, batch);
        for (int b : new int[] {0, 2}) {
            int m = b == 2 ? 0 : 1;
            assertEquals(1, masks[m * words + chosen[b] / 32] >>> (chosen[b] % 32) & 1, "row " + b + " chose an allowed id");
        }
    }

    @Test
    void aRowOutsideTheBatchIsRefused() {
        Tensor logits = backend.allocate(DType.F32, 2, 40);
        BackendException e = assertThrows(BackendException.class,
                () -> backend.maskLogits(logits, ints(new int[4], 2, 2), ints(new int[] {0, 2}, 2), 2));
        assertTrue(e.getMessage().contains("row 2 at 1 outside [0, 2)"), e.getMessage());
        assertThrows(BackendException.class,
                () -> backend.maskLogits(logits, ints(new int[3], 1, 3), ints(new int[] {0}, 1), 1),
                "a mask row of 3 words does not fit 40 ids");
    }
}
