package ai.kiln.backend;

import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;

/**
 * The scales of one layer's FP8 (e4m3) KV cache: one fp32 scale for each (slot, KV head) row of K
 * and of V, written with the row (its largest magnitude / 448, the dynamic per-token rule of the FP8
 * inputs) and read back with it: an element's value is its code's times its row's scale.
 *
 * @param k [numBlocks, blockSize, numKvHeads] F32, beside the K cache [numBlocks, blockSize, numKvHeads, headDim]
 * @param v the same for V
 */
public record KvCacheScales(Tensor k, Tensor v) {

    public KvCacheScales {
        if (k == null || v == null || k.dtype() != DType.F32 || v.dtype() != DType.F32 || k.rank() != 3
                || !java.util.Arrays.equals(k.shape(), v.shape())) {
            throw new IllegalArgumentException("KV cache scales must be two F32 tensors of [numBlocks, blockSize,"
                    + " numKvHeads], got " + k + " and " + v);
        }
    }

    /**
     * Checks that kCache and vCache are FP8 and that scales (which may be null) are contiguous and
     * fit them, naming op and the backend in the error.
     */
    public static void requireFp8Cache(Tensor kCache, Tensor vCache, KvCacheScales scales, String op,
            String backendName) {
        TensorChecks.requireDType(kCache, DType.F8_E4M3, op + " kCache", backendName);
        TensorChecks.requireDType(vCache, DType.F8_E4M3, op + " vCache", backendName);
        if (scales == null || !scales.fits(kCache) || !scales.k().isContiguous() || !scales.v().isContiguous()) {
            throw new BackendException(op + ": an FP8 KV cache " + kCache + " needs contiguous K and V scales of"
                    + " [numBlocks, blockSize, numKvHeads], got " + scales);
        }
    }

    /** Whether these scales fit a cache of {@code cache}'s shape [numBlocks, blockSize, numKvHeads, headDim]. */
    public boolean fits(Tensor cache) {
        return cache.rank() == 4 && k.size(0) == cache.size(0) && k.size(1) == cache.size(1)
                && k.size(2) == cache.size(2);
    }
}
