package ai.kiln.tensor;

import java.util.Arrays;

/**
 * A view of memory owned elsewhere (a backend's arena or workspace, a mapped file): an address,
 * an element type and a shape. Elements are contiguous within the last dimension... and within
 * each row; {@code rowStride} is the distance in elements between consecutive indices of the
 * first dimension, so that a column slice of a wider matrix (q out of a fused qkv output) is a
 * view, not a copy.
 *
 * @param address   device or host address of element [0, 0, ...]
 * @param dtype     element type
 * @param shape     sizes, outermost first
 * @param rowStride elements between consecutive rows (first index); equals the product of the
 *                  inner dimensions for a contiguous tensor
 */
public record Tensor(long address, DType dtype, long[] shape, long rowStride) {

    public Tensor {
        if (shape.length == 0) {
            throw new IllegalArgumentException("a tensor needs at least one dimension");
        }
        for (long size : shape) {
            if (size < 0) {
                throw new IllegalArgumentException("negative size in shape " + Arrays.toString(shape));
            }
        }
        shape = shape.clone();
        if (rowStride < innerElements(shape)) {
            throw new IllegalArgumentException("row stride " + rowStride + " is smaller than a row of "
                    + Arrays.toString(shape));
        }
    }

    /** A contiguous tensor. */
    public static Tensor of(long address, DType dtype, long... shape) {
        return new Tensor(address, dtype, shape, innerElements(shape));
    }

    private static long innerElements(long[] shape) {
        long n = 1;
        for (int i = 1; i < shape.length; i++) {
            n = Math.multiplyExact(n, shape[i]);
        }
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public long size(int dim) {
        return shape[dim < 0 ? shape.length + dim : dim];
    }

    /** Elements of one row: the product of all but the first dimension. */
    public long rowElements() {
        return innerElements(shape);
    }

    public long rows() {
        return shape[0];
    }

    public long numel() {
        return Math.multiplyExact(shape[0], rowElements());
    }

    public boolean isContiguous() {
        return rowStride == rowElements();
    }

    /** Bytes spanned from the first element to one past the last. */
    public long spanBytes() {
        if (shape[0] == 0) {
            return 0;
        }
        return ((shape[0] - 1) * rowStride + rowElements()) * dtype.bytes;
    }

    /** Rows [start, start + count) of this tensor. */
    public Tensor rowSlice(long start, long count) {
        if (start < 0 || count < 0 || start + count > shape[0]) {
            throw new IndexOutOfBoundsException("rows [" + start + ", " + (start + count) + ") of " + this);
        }
        long[] newShape = shape.clone();
        newShape[0] = count;
        return new Tensor(address + start * rowStride * dtype.bytes, dtype, newShape, rowStride);
    }

    /**
     * Columns [start, start + count) of a 2-D tensor, with the given inner shape replacing the
     * column count (e.g. {@code columnSlice(0, qSize, numHeads, headDim)}).
     */
    public Tensor columnSlice(long start, long count, long... innerShape) {
        if (shape.length != 2) {
            throw new IllegalArgumentException("columnSlice needs a 2-D tensor, got " + this);
        }
        if (start < 0 || count < 0 || start + count > shape[1]) {
            throw new IndexOutOfBoundsException("columns [" + start + ", " + (start + count) + ") of " + this);
        }
        long[] newShape;
        if (innerShape.length == 0) {
            newShape = new long[] {shape[0], count};
        } else {
            if (innerElements(prepend(0, innerShape)) != count) {
                throw new IllegalArgumentException("inner shape " + Arrays.toString(innerShape)
                        + " does not hold " + count + " elements");
            }
            newShape = prepend(shape[0], innerShape);
        }
        return new Tensor(address + start * dtype.bytes, dtype, newShape, rowStride);
    }

    /** The same memory with another shape (contiguous tensors only, same element count). */
    public Tensor reshape(long... newShape) {
        if (!isContiguous()) {
            throw new IllegalStateException("cannot reshape a strided view " + this);
        }
        Tensor reshaped = Tensor.of(address, dtype, newShape);
        if (reshaped.numel() != numel()) {
            throw new IllegalArgumentException("cannot reshape " + this + " to " + Arrays.toString(newShape));
        }
        return reshaped;
    }

    private static long[] prepend(long first, long[] rest) {
        long[] out = new long[rest.length + 1];
        out[0] = first;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof Tensor t && t.address == address && t.dtype == dtype
                && Arrays.equals(t.shape, shape) && t.rowStride == rowStride;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(address) * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return "Tensor[" + dtype + " " + Arrays.toString(shape)
                + (isContiguous() ? "" : " rowStride=" + rowStride) + " @0x" + Long.toHexString(address) + "]";
    }
}
