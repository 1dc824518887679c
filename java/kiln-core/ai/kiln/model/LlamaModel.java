package ai.kiln.model;

import ai.kiln.backend.AttentionMetadata;
import ai.kiln.backend.Backend;
import ai.kiln.backend.HostTensors;
import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The forward pass of the Llama family (Llama 2/3/3.1/3.2, Mistral, Qwen2, Qwen3), written once
 * over the {@link Backend} ops; the architectures differ only by {@link ModelConfig} flags.
 *
 * <p>All step memory (metadata and activations) is allocated at construction for the largest
 * step ({@code maxTokens} tokens of at most {@code maxSeqs} sequences), so a step allocates
 * nothing.
 */
public final class LlamaModel implements AutoCloseable {

    /** Decode batches up to this size run as CUDA-graph replays (buckets 1, 2, 4, ..., 256). */
    public static final int MAX_GRAPH_BATCH = 256;

    private final ModelConfig config;
    private final ModelWeights weights;
    private final Backend backend;
    private final int maxTokens;
    private final int maxSeqs;
    private final int maxBlocksPerSeq;
    private final int maxPositions;
    private final float attentionScale;
    private final List<Tensor> owned = new ArrayList<>();

    // Step metadata, in backend memory.
    private final Tensor tokenIds;    // [maxTokens] I32
    private final Tensor positions;   // [maxTokens] I32
    private final Tensor slotMapping; // [maxTokens] I32
    private final Tensor queryStart;  // [maxSeqs + 1] I32
    private final Tensor seqLens;     // [maxSeqs] I32
    private final Tensor blockTables; // [maxSeqs, maxBlocksPerSeq] I32
    private final Tensor logitsRows;  // [maxSeqs] I32

    // Activations.
    private final Tensor residual;    // [maxTokens, H]
    private final Tensor normed;      // [maxTokens, H]
    private final Tensor qkv;         // [maxTokens, Q + 2 KV]
    private final Tensor attention;   // [maxTokens, Q]
    private final Tensor layerOut;    // [maxTokens, H]: o_proj and down_proj outputs
    private final Tensor gateUp;      // [maxTokens, 2 I]
    private final Tensor activated;   // [maxTokens, I]
    private final Tensor lastHidden;  // [maxSeqs, H]
    private final Tensor logits;      // [maxSeqs, V]
    private final Tensor cosSin;      // [maxPositions, D] F32

    // Decode graphs: one per batch-size bucket, and the host side of their padded metadata.
    private final int maxGraphBatch;
    private final Map<Integer, Long> decodeGraphs = new HashMap<>();
    private final int[] graphTokenIds;    // [maxGraphBatch]
    private final int[] graphPositions;   // [maxGraphBatch]
    private final int[] graphSlots;       // [maxGraphBatch]
    private final int[] graphSeqLens;     // [maxGraphBatch]
    private final int[] graphQueryStart;  // [maxGraphBatch + 1]: 0, 1, 2, ... (one token per sequence)
    private final int[] graphBlockTables; // [maxGraphBatch * maxBlocksPerSeq]

    /**
     * @param maxTokens       the most tokens one step may carry
     * @param maxSeqs         the most sequences one step may carry
     * @param maxBlocksPerSeq block-table row length (context limit / block size, rounded up)
     * @param maxPositions    the longest context served (at most the config's max_position_embeddings)
     */
    public LlamaModel(ModelConfig config, ModelWeights weights, Backend backend, int maxTokens, int maxSeqs,
            int maxBlocksPerSeq, int maxPositions) {
        if (maxTokens < 1 || maxSeqs < 1 || maxBlocksPerSeq < 1 || maxPositions < 1) {
            throw new IllegalArgumentException("LlamaModel needs positive step limits");
        }
        this.config = config;
        this.weights = weights;
        this.backend = backend;
        this.maxTokens = maxTokens;
        this.maxSeqs = maxSeqs;
        this.maxBlocksPerSeq = maxBlocksPerSeq;
        this.maxPositions = maxPositions;
        this.attentionScale = (float) (1.0 / Math.sqrt(config.headDim()));
        this.maxGraphBatch = backend.supportsGraphs() ? Math.min(Math.min(maxSeqs, maxTokens), MAX_GRAPH_BATCH) : 0;
        graphTokenIds = new int[maxGraphBatch];
        graphPositions = new int[maxGraphBatch];
        graphSlots = new int[maxGraphBatch];
        graphSeqLens = new int[maxGraphBatch];
        graphQueryStart = new int[maxGraphBatch + 1];
        for (int i = 0; i <= maxGraphBatch; i++) {
            graphQueryStart[i] = i;
        }
        graphBlockTables = new int[hostArrayLength("graph block tables", maxGraphBatch, maxBlocksPerSeq)];
        DType act = backend.activationDType();
        long h = config.hiddenSize();
        try {
            tokenIds = allocate(DType.I32, maxTokens);
            positions = allocate(DType.I32, maxTokens);
            slotMapping = allocate(DType.I32, maxTokens);
            queryStart = allocate(DType.I32, maxSeqs + 1);
            seqLens = allocate(DType.I32, maxSeqs);
            blockTables = allocate(DType.I32, maxSeqs, maxBlocksPerSeq);
            logitsRows = allocate(DType.I32, maxSeqs);
            residual = allocate(act, maxTokens, h);
            normed = allocate(act, maxTokens, h);
            qkv = allocate(act, maxTokens, config.qSize() + 2L * config.kvSize());
            attention = allocate(act, maxTokens, config.qSize());
            layerOut = allocate(act, maxTokens, h);
            gateUp = allocate(act, maxTokens, 2L * config.intermediateSize());
            activated = allocate(act, maxTokens, config.intermediateSize());
            lastHidden = allocate(act, maxSeqs, h);
            logits = allocate(backend.logitsDType(), maxSeqs, config.vocabSize());
            cosSin = allocate(DType.F32, maxPositions, config.headDim());
            uploadRotaryTable();
            backend.reserveAttention(maxSeqs, config.numHeads(), config.numKvHeads(), config.headDim(), maxPositions);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private Tensor allocate(DType dtype, long... shape) {
        long bytes = dtype.bytes;
        for (long dim : shape) {
            try {
                bytes = Math.multiplyExact(bytes, dim);
            } catch (ArithmeticException e) {
                throw new ModelLoadException("a step buffer of " + dtype + " " + Arrays.toString(shape)
                        + " overflows 64 bits (maxTokens " + maxTokens + ", maxSeqs " + maxSeqs + ", maxPositions "
                        + maxPositions + ")", e);
            }
        }
        Tensor tensor = backend.allocate(dtype, shape);
        owned.add(tensor);
        return tensor;
    }

    /** The length of a host array of rows x columns; one past a Java array's limit is refused, naming it. */
    private static int hostArrayLength(String what, int rows, int columns) {
        long length = (long) rows * columns;
        if (length > Integer.MAX_VALUE - 8) {
            throw new ModelLoadException("the " + what + " of " + rows + " x " + columns
                    + " entries exceeds a Java array (at most " + (Integer.MAX_VALUE - 8) + ")");
        }
        return (int) length;
    }

    /** cos and sin of position * inverse frequency, in fp32 as Hugging Face computes them. */
    private void uploadRotaryTable() {
        int d = config.headDim();
        int half = d / 2;
        float[] inv = config.ropeScaling().inverseFrequencies(config.ropeTheta(), d);
        float[] table = new float[hostArrayLength("rotary table", maxPositions, d)];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float) p * inv[i];
                table[p * d + i] = (float) Math.cos(angle);
                table[p * d + half + i] = (float) Math.sin(angle);
            }
        }
        Tensor host = HostTensors.floats(table, maxPositions, d);
        try {
            backend.upload(cosSin, host);
        } finally {
            HostTensors.release(host);
        }
    }

    public Backend backend() {
        return backend;
    }

    /** Waits for the last step's ops (the logits are then readable). */
    public void synchronize() {
        backend.synchronize();
    }

    public ModelConfig config() {
        return config;
    }

    public int maxTokens() {
        return maxTokens;
    }

    public int maxSeqs() {
        return maxSeqs;
    }

    public int maxBlocksPerSeq() {
        return maxBlocksPerSeq;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /**
     * Runs one step: writes the new tokens' K/V into the cache and returns the logits of the
     * requested rows, [numLogitsRows, V] in backend memory (valid until the next step).
     *
     * <p>On a backend that records graphs, a pure decode step (one new token per sequence, every
     * sequence sampled) of at most {@link #maxGraphBatch()} sequences runs as the replay of a graph
     * captured once per batch-size bucket: the batch is padded to the bucket (padding tokens write
     * no K/V and their logits are never read) and its metadata copied into the fixed buffers the
     * graph reads.
     */
    public Tensor forward(ForwardBatch batch, KvCacheStorage cache) {
        int t = batch.numTokens();
        int s = batch.numSeqs();
        if (t > maxTokens || s > maxSeqs || batch.maxBlocksPerSeq() != maxBlocksPerSeq
                || batch.numLogitsRows() > maxSeqs) {
            throw new IllegalArgumentException("step of " + t + " tokens / " + s + " sequences exceeds the model's"
                    + " limits of " + maxTokens + " / " + maxSeqs);
        }
        batch.validate(config.vocabSize(), maxPositions, cache.numBlocks(), cache.blockSize());
        if (isGraphDecode(batch)) {
            return forwardDecodeGraph(batch, cache);
        }
        backend.copyFromHost(tokenIds, batch.tokenIds(), t);
        backend.copyFromHost(positions, batch.positions(), t);
        backend.copyFromHost(slotMapping, batch.slotMapping(), t);
        backend.copyFromHost(queryStart, batch.queryStart(), s + 1);
        backend.copyFromHost(seqLens, batch.seqLens(), s);
        backend.copyFromHost(blockTables, batch.blockTables(), s * maxBlocksPerSeq);
        backend.copyFromHost(logitsRows, batch.logitsRows(), batch.numLogitsRows());
        AttentionMetadata metadata = new AttentionMetadata(blockTables, queryStart, seqLens, s, t,
                maxBlocksPerSeq, batch.maxQueryLen(), batch.maxSeqLen(), batch.numLeadingSingleTokenSeqs());
        return compute(t, batch.numLogitsRows(), metadata, cache);
    }

    /** The largest decode batch that runs as a graph replay (0: graphs are off). */
    public int maxGraphBatch() {
        return maxGraphBatch;
    }

    private boolean isGraphDecode(ForwardBatch batch) {
        int s = batch.numSeqs();
        if (maxGraphBatch == 0 || s > maxGraphBatch || batch.numTokens() != s || batch.numLogitsRows() != s) {
            return false;
        }
        for (int i = 0; i < s; i++) {
            if (batch.logitsRows()[i] != i) {
                return false;
            }
        }
        return true;
    }

    /**
     * Records the decode graph of every batch-size bucket now, so that no request pays for a
     * capture (a server's warm-up: the first request of a bucket otherwise runs that step twice,
     * eagerly and captured). The steps run over padding rows alone, which write no K/V. A no-op
     * where graphs are off.
     */
    public void captureDecodeGraphs(KvCacheStorage cache) {
        for (int numSeqs = 1; numSeqs <= maxGraphBatch; numSeqs++) {
            int bucket = bucketOf(numSeqs);
            if (!decodeGraphs.containsKey(bucket)) {
                fillPadding(0, bucket);
                copyGraphMetadata(bucket);
                computeAndRecord(bucket, cache);
            }
        }
        backend.synchronize();
    }

    /** The graph bucket of a decode batch: the next power of two, at most maxGraphBatch. */
    private int bucketOf(int numSeqs) {
        int bucket = 1;
        while (bucket < numSeqs) {
            bucket <<= 1;
        }
        return Math.min(bucket, maxGraphBatch);
    }

    private Tensor forwardDecodeGraph(ForwardBatch batch, KvCacheStorage cache) {
        int n = batch.numSeqs();
        int bucket = bucketOf(n);
        System.arraycopy(batch.tokenIds(), 0, graphTokenIds, 0, n);
        System.arraycopy(batch.positions(), 0, graphPositions, 0, n);
        System.arraycopy(batch.slotMapping(), 0, graphSlots, 0, n);
        System.arraycopy(batch.seqLens(), 0, graphSeqLens, 0, n);
        System.arraycopy(batch.blockTables(), 0, graphBlockTables, 0, n * maxBlocksPerSeq);
        fillPadding(n, bucket);
        copyGraphMetadata(bucket);
        Long graph = decodeGraphs.get(bucket);
        if (graph == null) {
            return computeAndRecord(bucket, cache).rowSlice(0, n);
        }
        backend.replay(graph);
        return logits.rowSlice(0, n);
    }

    /**
     * Padding sequences in rows [from, to) of the graph metadata: token 0 at position 0, no cache
     * slot, one token of context read from block 0 (any block holds finite or NaN values; the row
     * is never sampled).
     */
    private void fillPadding(int from, int to) {
        for (int i = from; i < to; i++) {
            graphTokenIds[i] = 0;
            graphPositions[i] = 0;
            graphSlots[i] = -1;
            graphSeqLens[i] = 1;
            graphBlockTables[i * maxBlocksPerSeq] = 0;
        }
    }

    private void copyGraphMetadata(int bucket) {
        backend.copyFromHost(tokenIds, graphTokenIds, bucket);
        backend.copyFromHost(positions, graphPositions, bucket);
        backend.copyFromHost(slotMapping, graphSlots, bucket);
        backend.copyFromHost(queryStart, graphQueryStart, bucket + 1);
        backend.copyFromHost(seqLens, graphSeqLens, bucket);
        backend.copyFromHost(blockTables, graphBlockTables, bucket * maxBlocksPerSeq);
        backend.copyFromHost(logitsRows, graphQueryStart, bucket); // row i is sequence i's token
    }

    /** The graph bakes in every launch argument, so the context bound is the model's limit. */
    private AttentionMetadata graphMetadata(int bucket) {
        return new AttentionMetadata(blockTables, queryStart, seqLens, bucket, bucket, maxBlocksPerSeq, 1,
                maxPositions);
    }

    /**
     * Runs a bucket's step over the metadata in backend memory eagerly (sizing workspaces and
     * warming libraries, which capture forbids), then records the same step as the bucket's graph
     * (recording runs nothing); returns the eager step's logits.
     */
    private Tensor computeAndRecord(int bucket, KvCacheStorage cache) {
        AttentionMetadata metadata = graphMetadata(bucket);
        Tensor out = compute(bucket, bucket, metadata, cache);
        backend.beginCapture();
        long graph;
        try {
            compute(bucket, bucket, metadata, cache);
        } finally {
            graph = backend.endCapture();
        }
        decodeGraphs.put(bucket, graph);
        return out;
    }

    /** The layers over the metadata already in backend memory: tokens [0, t), logits of r rows. */
    private Tensor compute(int t, int r, AttentionMetadata metadata, KvCacheStorage cache) {
        int q = config.qSize();
        int kv = config.kvSize();
        float eps = (float) config.rmsNormEps();
        Tensor ids = tokenIds.rowSlice(0, t);
        Tensor pos = positions.rowSlice(0, t);
        Tensor slots = slotMapping.rowSlice(0, t);
        Tensor residualT = residual.rowSlice(0, t);   // [T, H]
        Tensor normedT = normed.rowSlice(0, t);       // [T, H]
        Tensor qkvT = qkv.rowSlice(0, t);             // [T, Q + 2 KV]
        Tensor attentionT = attention.rowSlice(0, t); // [T, Q]
        Tensor layerOutT = layerOut.rowSlice(0, t);   // [T, H]
        Tensor gateUpT = gateUp.rowSlice(0, t);       // [T, 2 I]
        Tensor activatedT = activated.rowSlice(0, t); // [T, I]
        Tensor queries = qkvT.columnSlice(0, q, config.numHeads(), config.headDim());      // [T, Hq, D]
        Tensor keys = qkvT.columnSlice(q, kv, config.numKvHeads(), config.headDim());      // [T, Hk, D]
        Tensor values = qkvT.columnSlice(q + kv, kv, config.numKvHeads(), config.headDim()); // [T, Hk, D]

        backend.embedding(residualT, weights.embedding(), ids);
        List<ModelWeights.Layer> layers = weights.layers();
        for (int i = 0; i < layers.size(); i++) {
            ModelWeights.Layer layer = layers.get(i);
            // Attention block: the first layer normalises the embeddings; later ones first add
            // the previous MLP output to the residual stream.
            backend.rmsNorm(normedT, i == 0 ? residualT : layerOutT, i == 0 ? null : residualT, layer.inputNorm(), eps);
            backend.gemm(qkvT, normedT, layer.qkv().weight(), layer.qkv().scales(), layer.qkv().inputs(),
                    layer.qkvBias());
            if (config.qkNorm()) {
                backend.headRmsNorm(queries, layer.qNorm(), eps);
                backend.headRmsNorm(keys, layer.kNorm(), eps);
            }
            backend.rotaryWriteKvCache(queries, keys, values, cache.keys(i), cache.values(i), pos, slots, cosSin, true,
                    cache.scales(i));
            backend.attention(attentionT, queries, cache.keys(i), cache.values(i), metadata, attentionScale,
                    cache.scales(i));
            backend.gemm(layerOutT, attentionT, layer.output().weight(), layer.output().scales(),
                    layer.output().inputs(), layer.outputBias());
            // MLP block.
            backend.rmsNorm(normedT, layerOutT, residualT, layer.postNorm(), eps);
            backend.gemmSiluAndMul(activatedT, normedT, layer.gateUp().weight(), layer.gateUp().scales(),
                    layer.gateUp().inputs(), gateUpT);
            backend.gemm(layerOutT, activatedT, layer.down().weight(), layer.down().scales(), layer.down().inputs(),
                    null);
        }
        backend.rmsNorm(normedT, layerOutT, residualT, weights.finalNorm(), eps);

        Tensor lastHiddenR = lastHidden.rowSlice(0, r);
        Tensor logitsR = logits.rowSlice(0, r);
        backend.gatherRows(lastHiddenR, normedT, logitsRows.rowSlice(0, r));
        backend.gemm(logitsR, lastHiddenR, weights.lmHead().weight(), weights.lmHead().scales(),
                weights.lmHead().inputs(), null);
        return logitsR;
    }

    @Override
    public void close() {
        decodeGraphs.values().forEach(backend::releaseGraph);
        decodeGraphs.clear();
        owned.forEach(backend::free);
        owned.clear();
    }
}
