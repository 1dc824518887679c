package ai.kiln.kvcache;

import ai.kiln.backend.Backend;
import ai.kiln.backend.KvCacheScales;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The memory of the paged KV cache: for every layer one K and one V tensor of
 * [numBlocks, blockSize, numKvHeads, headDim], allocated once, of the activations' type or FP8
 * (e4m3, with its scales). Which block belongs to which sequence is decided by the block manager,
 * not here.
 */
public final class KvCacheStorage implements AutoCloseable {

    private final Backend backend;
    private final int numBlocks;
    private final int blockSize;
    private final List<Tensor> keys = new ArrayList<>();   // per layer [numBlocks, blockSize, Hk, D]
    private final List<Tensor> values = new ArrayList<>(); // per layer [numBlocks, blockSize, Hk, D]
    private final List<KvCacheScales> scales = new ArrayList<>(); // per layer, FP8 only: [numBlocks, blockSize, Hk] x 2
    private final DType dtype;

    /** A cache of the backend's activation type. */
    public KvCacheStorage(Backend backend, int numLayers, int numBlocks, int blockSize, int numKvHeads, int headDim) {
        this(backend, numLayers, numBlocks, blockSize, numKvHeads, headDim, backend.activationDType());
    }

    /**
     * A cache of {@code dtype}: the backend's activation type, or F8_E4M3 (with a scale per slot and
     * KV head beside it) where the backend keeps one.
     */
    public KvCacheStorage(Backend backend, int numLayers, int numBlocks, int blockSize, int numKvHeads, int headDim,
            DType dtype) {
        if (numBlocks <= 0 || blockSize <= 0) {
            throw new IllegalArgumentException("the KV cache needs numBlocks > 0 and blockSize > 0, got "
                    + numBlocks + " and " + blockSize);
        }
        if (!backend.supportsKvCacheDType(dtype, headDim)) {
            throw new IllegalArgumentException("this backend keeps no KV cache of " + dtype + " for head_dim "
                    + headDim);
        }
        this.backend = backend;
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.dtype = dtype;
        try {
            for (int layer = 0; layer < numLayers; layer++) {
                keys.add(backend.allocate(dtype, numBlocks, blockSize, numKvHeads, headDim));
                values.add(backend.allocate(dtype, numBlocks, blockSize, numKvHeads, headDim));
                if (dtype == DType.F8_E4M3) {
                    scales.add(new KvCacheScales(backend.allocate(DType.F32, numBlocks, blockSize, numKvHeads),
                            backend.allocate(DType.F32, numBlocks, blockSize, numKvHeads)));
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Bytes one block takes over all layers, K and V (an FP8 cache's row scales included). */
    public static long bytesPerBlock(int numLayers, int blockSize, int numKvHeads, int headDim, DType dtype) {
        long rowBytes = (long) headDim * dtype.bytes + (dtype == DType.F8_E4M3 ? DType.F32.bytes : 0);
        return 2L * numLayers * blockSize * numKvHeads * rowBytes;
    }

    /** What the cache stores: the activations' type, or F8_E4M3. */
    public DType dtype() {
        return dtype;
    }

    /** The row scales of layer {@code layer}'s FP8 cache; null for a cache of the activations' type. */
    public KvCacheScales scales(int layer) {
        return dtype == DType.F8_E4M3 ? scales.get(layer) : null;
    }

    public int numBlocks() {
        return numBlocks;
    }

    public int blockSize() {
        return blockSize;
    }

    public Tensor keys(int layer) {
        return keys.get(layer);
    }

    public Tensor values(int layer) {
        return values.get(layer);
    }

    @Override
    public void close() {
        keys.forEach(backend::free);
        values.forEach(backend::free);
        for (KvCacheScales layer : scales) {
            backend.free(layer.k());
            backend.free(layer.v());
        }
        keys.clear();
        values.clear();
        scales.clear();
    }
}
