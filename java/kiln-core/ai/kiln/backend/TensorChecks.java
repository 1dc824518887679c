package ai.kiln.backend;

import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.Arrays;

/** The argument checks every backend makes before an op, with messages naming the argument. */
public final class TensorChecks {

    private TensorChecks() {
    }

    /** {@code tensor} is present and of {@code dtype}; {@code backend} names where ("CPU", "CUDA"). */
    public static void requireDType(Tensor tensor, DType dtype, String what, String backend) {
        if (tensor == null) {
            throw new BackendException(what + " is missing");
        }
        if (tensor.dtype() != dtype) {
            throw new BackendException(what + " must be " + dtype + " on the " + backend + " backend, got " + tensor);
        }
    }

    /** {@code tensor} is present and of {@code dtype}, which every backend requires of it. */
    public static void requireDType(Tensor tensor, DType dtype, String what) {
        if (tensor == null) {
            throw new BackendException(what + " is missing");
        }
        if (tensor.dtype() != dtype) {
            throw new BackendException(what + " must be " + dtype + ", got " + tensor);
        }
    }

    public static void requireRank(Tensor tensor, int rank, String what) {
        if (tensor.rank() != rank) {
            throw new BackendException(what + " must have " + rank + " dimensions, got " + tensor);
        }
    }

    public static void requireContiguous(Tensor tensor, String what) {
        if (!tensor.isContiguous()) {
            throw new BackendException(what + " must be contiguous, got " + tensor);
        }
    }

    public static BackendException shapeError(String op, Tensor... tensors) {
        return new BackendException(op + ": shapes do not fit: " + Arrays.toString(tensors));
    }
}
