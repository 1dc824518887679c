package ai.kiln.kvcache;

import ai.kiln.backend.Backend;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The memory of the paged KV cache: for every layer one K and one V tensor of
 * [numBlocks, blockSize, numKvHeads, headDim], allocated once. Which block belongs to which
 * sequence is decided by the block manager, not here.
 */
public final class KvCacheStorage implements AutoCloseable {

    private final Backend backend;
    private final int numBlocks;
    private final int blockSize;
    private final List<Tensor> keys = new ArrayList<>();   // per layer [numBlocks, blockSize, Hk, D]
    private final List<Tensor> values = new ArrayList<>(); // per layer [numBlocks, blockSize, Hk, D]

    public KvCacheStorage(Backend backend, int numLayers, int numBlocks, int blockSize, int numKvHeads, int headDim) {
        if (numBlocks <= 0 || blockSize <= 0) {
            throw new IllegalArgumentException("the KV cache needs numBlocks > 0 and blockSize > 0, got "
                    + numBlocks + " and " + blockSize);
        }
        this.backend = backend;
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        try {
            for (int layer = 0; layer < numLayers; layer++) {
                keys.add(backend.allocate(backend.activationDType(), numBlocks, blockSize, numKvHeads, headDim));
                values.add(backend.allocate(backend.activationDType(), numBlocks, blockSize, numKvHeads, headDim));
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Bytes one block takes over all layers, K and V. */
    public static long bytesPerBlock(int numLayers, int blockSize, int numKvHeads, int headDim, DType dtype) {
        return 2L * numLayers * blockSize * numKvHeads * headDim * dtype.bytes;
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
        keys.clear();
        values.clear();
    }
}
