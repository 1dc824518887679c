package ai.kiln.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's {@link Backend#addLogitBias}: each entry adds its bias to one logit, nothing
 * else changes, and an entry out of range is refused. (The CUDA twin is held to it by
 * kiln_op_tests --filter logit_bias.)
 */
class LogitBiasOpTest {

    CpuBackend backend;

    @BeforeEach
    void open() {
        backend = new CpuBackend(2, 1L << 26);
    }

    @AfterEach
    void close() {
        backend.close();
    }

    Tensor entries(int... words) {
        Tensor t = backend.allocate(DType.I32, words.length / 3, 3);
        backend.copyFromHost(t, words, words.length);
        return t;
    }

    @Test
    void eachEntryAddsItsBiasToOneLogit() {
        float[] values = new float[3 * 5];
        for (int i = 0; i < values.length; i++) {
            values[i] = i * 0.5f;
        }
        Tensor logits = backend.allocate(DType.F32, 3, 5);
        Tensor host = HostTensors.floats(values, 3, 5);
        backend.upload(logits, host);
        HostTensors.release(host);
        backend.addLogitBias(logits, entries(0, 4, Float.floatToRawIntBits(100f), 2, 0, Float.floatToRawIntBits(-2.5f)), 2);
        float[] got = new float[values.length];
        backend.copyToHost(logits, got, got.length);
        for (int i = 0; i < values.length; i++) {
            float expected = i == 4 ? values[i] + 100f : i == 10 ? values[i] - 2.5f : values[i];
            assertEquals(expected, got[i], "logit " + i);
        }
    }

    @Test
    void anEntryOutOfRangeIsRefused() {
        Tensor logits = backend.allocate(DType.F32, 2, 5);
        BackendException e = assertThrows(BackendException.class,
                () -> backend.addLogitBias(logits, entries(1, 5, 0), 1));
        assertTrue(e.getMessage().contains("(row 1, id 5) outside [0, 2) x [0, 5)"), e.getMessage());
    }
}
