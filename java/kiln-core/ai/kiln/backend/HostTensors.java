package ai.kiln.backend;

import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;

/** Short-lived host-memory tensors, for data made in Java and uploaded to a backend. */
public final class HostTensors {

    private HostTensors() {
    }

    /** A new host tensor holding a copy of values; free it with {@link #release}. */
    public static Tensor floats(float[] values, long... shape) {
        Tensor tensor = Tensor.of(0, DType.F32, shape);
        if (tensor.numel() != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill shape " + tensor);
        }
        long address = KilnCpu.kiln_cpu_alloc(Math.max(4L, 4L * values.length));
        if (address == 0) {
            throw new BackendException(KilnCpu.kiln_last_error());
        }
        KilnCpu.kiln_cpu_copy(address, values, 4L * values.length);
        return Tensor.of(address, DType.F32, shape);
    }

    public static void release(Tensor tensor) {
        KilnCpu.kiln_cpu_free(tensor.address());
    }
}
