package ai.kiln.model;

import ai.kiln.progress.ByteProgress;
import ai.kiln.backend.Backend;
import ai.kiln.backend.BackendException;
import ai.kiln.backend.HostTensors;
import ai.kiln.backend.InputQuantization;
import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A model's weights in backend memory. The q/k/v projections are fused into one matrix and the
 * gate/up projections into another, so each is a single GEMM per layer. With {@link
 * WeightQuantization#INT8} the linear layers (and the LM head) are quantised per row as they load.
 * An FP8 checkpoint ({@link ModelConfig#fp8()}) keeps its e4m3 weights as stored, one byte each,
 * with an fp32 scale per output row.
 *
 * <p>NOTE: a fused projection's shards each bring their own weight_scale, so the fused matrix keeps
 * one scale per row: a shard's per-tensor scale is repeated over its rows. That is exact (every
 * row multiplies by the scale its shard was stored with), where one scale for the fused matrix
 * would need the weights rounded again. Static input scales cannot be split the same way, as the
 * shards share one input: the fused GEMM quantises it with the largest of the shards' input_scale
 * (as vLLM does); calibration gives the shards of one input the same scale in practice.
 */
public final class ModelWeights implements AutoCloseable {

    /**
     * A linear layer's weight matrix: as stored (scales null), or quantised per output row.
     *
     * @param weight [N, K]: float as loaded, I8, or F8_E4M3
     * @param scales [N] F32, weight ~ weight * scales row by row; null for float weights
     * @param inputs how an F8_E4M3 weight's GEMM quantises its inputs; null for other weights
     */
    public record Linear(Tensor weight, Tensor scales, InputQuantization inputs) {
        public Linear(Tensor weight, Tensor scales) {
            this(weight, scales, null);
        }
    }

    /**
     * One decoder layer.
     *
     * @param inputNorm [H]
     * @param qkv       [Q + 2 KV, H], rows q then k then v (Q = Hq * D, KV = Hk * D)
     * @param qkvBias   [Q + 2 KV] or null
     * @param qNorm     [D] or null (Qwen3)
     * @param kNorm     [D] or null (Qwen3)
     * @param output    [H, Q]
     * @param outputBias [H] or null
     * @param postNorm  [H]
     * @param gateUp    [2 I, H], rows gate then up
     * @param down      [H, I]
     */
    public record Layer(Tensor inputNorm, Linear qkv, Tensor qkvBias, Tensor qNorm, Tensor kNorm, Linear output,
            Tensor outputBias, Tensor postNorm, Linear gateUp, Linear down) {
    }

    private final Backend backend;
    private final WeightQuantization quantization;
    private Fp8Checkpoint fp8; // the checkpoint's FP8 scheme, null for float checkpoints
    private final List<Tensor> owned = new ArrayList<>();
    private Tensor embedding;   // [V, H]
    private Tensor finalNorm;   // [H]
    private Linear lmHead;      // [V, H]; the embedding itself when tied (a quantised copy of it with INT8)
    private final List<Layer> layers = new ArrayList<>();
    private long bytes;
    private ByteProgress progress;

    private ModelWeights(Backend backend, WeightQuantization quantization) {
        this.backend = backend;
        this.quantization = quantization;
    }

    public Tensor embedding() {
        return embedding;
    }

    public Tensor finalNorm() {
        return finalNorm;
    }

    public Linear lmHead() {
        return lmHead;
    }

    public WeightQuantization quantization() {
        return quantization;
    }

    public List<Layer> layers() {
        return layers;
    }

    /** Bytes of backend memory the weights occupy. */
    public long bytes() {
        return bytes;
    }

    /** Copies every weight the config calls for from the files into backend memory, checking each. */
    public static ModelWeights load(ModelConfig config, WeightFiles files, Backend backend) {
        return load(config, files, backend, WeightQuantization.NONE);
    }

    /**
     * Copies every weight the config calls for from the files into backend memory, checking each,
     * and quantises the linear layers as asked.
     */
    public static ModelWeights load(ModelConfig config, WeightFiles files, Backend backend,
            WeightQuantization quantization) {
        if (config.fp8() != null && !backend.supportsQuantizedWeights(DType.F8_E4M3)) {
            throw new BackendException("FP8 weights run on the CPU backend and on CUDA GPUs of compute capability"
                    + " 9.0 or later; the " + backend.name() + " backend here cannot load this checkpoint"
                    + " (quantization_config.quant_method " + config.fp8().format() + ")");
        }
        if (config.fp8() != null && quantization == WeightQuantization.INT8) {
            throw new ModelLoadException("quantization int8 quantises float checkpoints; this one is FP8 already"
                    + " (quantization_config.quant_method " + config.fp8().format() + ")");
        }
        if (quantization == WeightQuantization.FP8 && !backend.supportsQuantizedWeights(DType.F8_E4M3)) {
            throw new BackendException("FP8 weights run on the CPU backend and on CUDA GPUs of compute capability"
                    + " 9.0 or later; the " + backend.name() + " backend here cannot run quantization fp8");
        }
        if (quantization == WeightQuantization.INT8 && !backend.supportsQuantizedWeights(DType.I8)) {
            throw new BackendException("int8 weights (quantization int8) are a CPU-backend format; the "
                    + backend.name() + " backend keeps weights as stored");
        }
        ModelWeights weights = new ModelWeights(backend, quantization);
        try {
            weights.loadAll(config, files);
            return weights;
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    private void loadAll(ModelConfig c, WeightFiles files) {
        fp8 = c.fp8();
        requireExactTensorSet(c, files);
        progress = ByteProgress.onStderr("loading weights", "loaded %.2f GB of weights", files.totalTensorBytes());
        long h = c.hiddenSize();
        long q = c.qSize();
        long kv = c.kvSize();
        long inter = c.intermediateSize();
        long d = c.headDim();
        embedding = load(files, "model.embed_tokens.weight", c.vocabSize(), h);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            Tensor inputNorm = load(files, p + "input_layernorm.weight", h);
            Linear qkv = loadLinearFused(files, new long[] {q + 2 * kv, h},
                    p + "self_attn.q_proj.weight", new long[] {q, h},
                    p + "self_attn.k_proj.weight", new long[] {kv, h},
                    p + "self_attn.v_proj.weight", new long[] {kv, h});
            Tensor qkvBias = !c.qkvBias() ? null : loadFused(files, new long[] {q + 2 * kv},
                    p + "self_attn.q_proj.bias", new long[] {q},
                    p + "self_attn.k_proj.bias", new long[] {kv},
                    p + "self_attn.v_proj.bias", new long[] {kv});
            Tensor qNorm = c.qkNorm() ? load(files, p + "self_attn.q_norm.weight", d) : null;
            Tensor kNorm = c.qkNorm() ? load(files, p + "self_attn.k_norm.weight", d) : null;
            Linear output = loadLinear(files, p + "self_attn.o_proj.weight", h, q);
            Tensor outputBias = c.outputBias() ? load(files, p + "self_attn.o_proj.bias", h) : null;
            Tensor postNorm = load(files, p + "post_attention_layernorm.weight", h);
            Linear gateUp = loadLinearFused(files, new long[] {2 * inter, h},
                    p + "mlp.gate_proj.weight", new long[] {inter, h},
                    p + "mlp.up_proj.weight", new long[] {inter, h});
            Linear down = loadLinear(files, p + "mlp.down_proj.weight", h, inter);
            layers.add(new Layer(inputNorm, qkv, qkvBias, qNorm, kNorm, output, outputBias, postNorm, gateUp, down));
        }
        finalNorm = load(files, "model.norm.weight", h);
        if (c.tieWordEmbeddings() && !files.contains("lm_head.weight")) {
            lmHead = quantization != WeightQuantization.INT8 ? new Linear(embedding, null)
                    : quantizedCopy(embedding, files, "model.embed_tokens.weight");
        } else {
            // NOTE: quantization fp8 leaves the LM head as stored, as vLLM's does; int8 quantises it too.
            lmHead = quantization == WeightQuantization.FP8 && fp8 == null
                    ? new Linear(load(files, "lm_head.weight", c.vocabSize(), h), null)
                    : loadLinear(files, "lm_head.weight", c.vocabSize(), h);
        }
        progress.finish();
    }

    /**
     * The tensor names the config calls for; lm_head.weight is optional when the embeddings are
     * tied. Each FP8 module has its weight_scale beside its weight, and its input_scale when its
     * inputs are static.
     */
    static Set<String> expectedTensors(ModelConfig c, boolean withLmHead) {
        Set<String> names = new LinkedHashSet<>();
        for (String name : floatCheckpointTensors(c, withLmHead)) {
            names.add(name);
            String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
            if (c.fp8() != null && module != null && isLinear(module) && c.fp8().quantizes(module)) {
                names.add(module + ".weight_scale");
                if (c.fp8().inputs() == InputQuantization.Mode.STATIC_PER_TENSOR) {
                    names.add(module + ".input_scale");
                }
            }
        }
        return names;
    }

    private static boolean isLinear(String module) {
        return module.equals("lm_head") || module.endsWith("_proj");
    }

    private static Set<String> floatCheckpointTensors(ModelConfig c, boolean withLmHead) {
        Set<String> names = new LinkedHashSet<>();
        names.add("model.embed_tokens.weight");
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            names.add(p + "input_layernorm.weight");
            for (String projection : List.of("q_proj", "k_proj", "v_proj")) {
                names.add(p + "self_attn." + projection + ".weight");
                if (c.qkvBias()) {
                    names.add(p + "self_attn." + projection + ".bias");
                }
            }
            if (c.qkNorm()) {
                names.add(p + "self_attn.q_norm.weight");
                names.add(p + "self_attn.k_norm.weight");
            }
            names.add(p + "self_attn.o_proj.weight");
            if (c.outputBias()) {
                names.add(p + "self_attn.o_proj.bias");
            }
            names.add(p + "post_attention_layernorm.weight");
            names.add(p + "mlp.gate_proj.weight");
            names.add(p + "mlp.up_proj.weight");
            names.add(p + "mlp.down_proj.weight");
        }
        names.add("model.norm.weight");
        if (withLmHead) {
            names.add("lm_head.weight");
        }
        return names;
    }

    /**
     * The files must hold exactly the tensors the config describes: a missing one cannot be
     * guessed, and an unexpected one (a layer past num_hidden_layers, a bias the config turns
     * off) means the config does not describe these weights.
     */
    private static void requireExactTensorSet(ModelConfig c, WeightFiles files) {
        Set<String> present = files.tensorNames();
        Set<String> expected = expectedTensors(c, !c.tieWordEmbeddings() || present.contains("lm_head.weight"));
        List<String> missing = expected.stream().filter(name -> !present.contains(name)).toList();
        List<String> unexpected = present.stream()
                .filter(name -> !expected.contains(name) && !isIgnoredBuffer(name, c)).sorted().toList();
        if (missing.isEmpty() && unexpected.isEmpty()) {
            return;
        }
        StringBuilder message = new StringBuilder(files.fileOf(missing.isEmpty() ? unexpected.get(0) : missing.get(0))
                .toString()).append(": ");
        if (!missing.isEmpty()) {
            message.append("missing tensor ").append(quotedList(missing));
        }
        if (!unexpected.isEmpty()) {
            message.append(missing.isEmpty() ? "" : "; ").append("unexpected tensor ").append(quotedList(unexpected));
        }
        message.append(" (the config describes ").append(c.architecture()).append(" with num_hidden_layers ")
                .append(c.numLayers()).append(c.qkvBias() ? ", q/k/v bias" : "").append(c.qkNorm() ? ", q/k norm" : "")
                .append(c.tieWordEmbeddings() ? ", tied embeddings" : "").append(")");
        throw new ModelLoadException(message.toString());
    }

    /**
     * NOTE: older Llama checkpoints store each layer's rotary inverse frequencies; transformers
     * ignores them on load and so does Kiln (they are recomputed from rope_theta).
     */
    private static boolean isIgnoredBuffer(String name, ModelConfig c) {
        // fbgemm_fp8 checkpoints may store activation_scale_ub per module too (read when present).
        if (c.fp8() != null && c.fp8().format().equals("fbgemm_fp8") && name.endsWith(".input_scale_ub")) {
            String module = name.substring(0, name.length() - ".input_scale_ub".length());
            return expectedTensors(c, true).contains(module + ".weight_scale");
        }
        String prefix = "model.layers.";
        // A kv_cache_scheme's per-tensor K and V scales: accepted, not read (see Fp8Checkpoint).
        boolean kvScale = c.fp8() != null && c.fp8().kvCacheScales()
                && (name.endsWith(".self_attn.k_scale") || name.endsWith(".self_attn.v_scale"));
        String suffix = kvScale ? name.substring(name.lastIndexOf(".self_attn.")) : ".self_attn.rotary_emb.inv_freq";
        if (!name.startsWith(prefix) || !name.endsWith(suffix)) {
            return false;
        }
        String layer = name.substring(prefix.length(), name.length() - suffix.length());
        return layer.matches("[0-9]{1,4}") && Integer.parseInt(layer) < c.numLayers();
    }

    private static String quotedList(List<String> names) {
        int shown = Math.min(names.size(), 5);
        String list = "'" + String.join("', '", names.subList(0, shown)) + "'";
        return shown == names.size() ? list : list + " and " + (names.size() - shown) + " more";
    }

    // ---- the loaded layout under artifact names (ModelArtifact writes and reads it) ----------------

    /** A tensor of the loaded layout under its artifact name. */
    public record NamedTensor(String name, Tensor tensor) {
    }

    /**
     * Every tensor as loaded (fused, converted, quantised), each under its artifact name: a
     * linear layer L as "L.weight" and, when quantised, "L.scales"; a tied LM head is not listed
     * again ({@link #lmHeadTied()}).
     */
    public List<NamedTensor> namedTensors() {
        List<NamedTensor> named = new ArrayList<>();
        named.add(new NamedTensor("embedding", embedding));
        for (int i = 0; i < layers.size(); i++) {
            Layer layer = layers.get(i);
            String p = "layers." + i + ".";
            named.add(new NamedTensor(p + "input_norm", layer.inputNorm()));
            addLinear(named, p + "qkv", layer.qkv());
            addIfPresent(named, p + "qkv_bias", layer.qkvBias());
            addIfPresent(named, p + "q_norm", layer.qNorm());
            addIfPresent(named, p + "k_norm", layer.kNorm());
            addLinear(named, p + "o", layer.output());
            addIfPresent(named, p + "o_bias", layer.outputBias());
            named.add(new NamedTensor(p + "post_norm", layer.postNorm()));
            addLinear(named, p + "gate_up", layer.gateUp());
            addLinear(named, p + "down", layer.down());
        }
        named.add(new NamedTensor("final_norm", finalNorm));
        if (!lmHeadTied()) {
            addLinear(named, "lm_head", lmHead);
        }
        return named;
    }

    private static void addLinear(List<NamedTensor> named, String name, Linear linear) {
        named.add(new NamedTensor(name + ".weight", linear.weight()));
        addIfPresent(named, name + ".scales", linear.scales());
    }

    private static void addIfPresent(List<NamedTensor> named, String name, Tensor tensor) {
        if (tensor != null) {
            named.add(new NamedTensor(name, tensor));
        }
    }

    /** Each FP8 linear layer's input quantisation, by its artifact name ("layers.0.qkv", "lm_head"). */
    public Map<String, InputQuantization> inputQuantizations() {
        Map<String, InputQuantization> inputs = new LinkedHashMap<>();
        for (int i = 0; i < layers.size(); i++) {
            Layer layer = layers.get(i);
            String p = "layers." + i + ".";
            putInputs(inputs, p + "qkv", layer.qkv());
            putInputs(inputs, p + "o", layer.output());
            putInputs(inputs, p + "gate_up", layer.gateUp());
            putInputs(inputs, p + "down", layer.down());
        }
        putInputs(inputs, "lm_head", lmHead);
        return inputs;
    }

    private static void putInputs(Map<String, InputQuantization> inputs, String name, Linear linear) {
        if (linear.inputs() != null) {
            inputs.put(name, linear.inputs());
        }
    }

    /** Whether the LM head is the embedding table itself. */
    public boolean lmHeadTied() {
        return lmHead.weight() == embedding;
    }

    /**
     * Loads weights stored in the loaded layout under artifact names ({@link #namedTensors()}), as a
     * compiled artifact holds them: each tensor is copied into backend memory as it is, with no
     * conversion, fusion or value check; shapes are checked against the config and dtypes against
     * the quantisation.
     *
     * @param inputs     the FP8 linear layers' input quantisation ({@link #inputQuantizations()})
     * @param tiedLmHead whether the LM head is the embedding table
     */
    public static ModelWeights loadLayout(ModelConfig config, WeightFiles files, Backend backend,
            WeightQuantization quantization, Map<String, InputQuantization> inputs, boolean tiedLmHead) {
        ModelWeights weights = new ModelWeights(backend, quantization);
        try {
            weights.loadLayoutAll(config, files, inputs, tiedLmHead);
            return weights;
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    private void loadLayoutAll(ModelConfig c, WeightFiles files, Map<String, InputQuantization> inputs,
            boolean tiedLmHead) {
        fp8 = c.fp8();
        progress = ByteProgress.onStderr("loading weights", "loaded %.2f GB of weights", files.totalTensorBytes());
        long h = c.hiddenSize();
        long q = c.qSize();
        long kv = c.kvSize();
        long inter = c.intermediateSize();
        long d = c.headDim();
        embedding = copied(files, "embedding", c.vocabSize(), h);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "layers." + i + ".";
            layers.add(new Layer(copied(files, p + "input_norm", h),
                    copiedLinear(files, inputs, p + "qkv", q + 2 * kv, h),
                    c.qkvBias() ? copied(files, p + "qkv_bias", q + 2 * kv) : null,
                    c.qkNorm() ? copied(files, p + "q_norm", d) : null,
                    c.qkNorm() ? copied(files, p + "k_norm", d) : null,
                    copiedLinear(files, inputs, p + "o", h, q),
                    c.outputBias() ? copied(files, p + "o_bias", h) : null,
                    copied(files, p + "post_norm", h),
                    copiedLinear(files, inputs, p + "gate_up", 2 * inter, h),
                    copiedLinear(files, inputs, p + "down", h, inter)));
        }
        finalNorm = copied(files, "final_norm", h);
        lmHead = tiedLmHead ? new Linear(embedding, null) : copiedLinear(files, inputs, "lm_head", c.vocabSize(), h);
        progress.finish();
    }

    /** A layout tensor (a float one) copied as it is, after its shape and dtype are checked. */
    private Tensor copied(WeightFiles files, String name, long... shape) {
        Tensor source = layoutSource(files, name, shape);
        requireKeptFloat(files, name, source);
        return uploaded(source);
    }

    private Tensor layoutSource(WeightFiles files, String name, long... shape) {
        if (!files.contains(name)) {
            throw new ModelLoadException(files.directory() + ": missing tensor '" + name + "'");
        }
        Tensor source = files.tensor(name);
        if (!Arrays.equals(source.shape(), shape)) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has shape "
                    + Arrays.toString(source.shape()) + ", the config needs " + Arrays.toString(shape));
        }
        return source;
    }

    /** A float tensor of the type this backend keeps float weights in (bf16 on CUDA, any on the CPU). */
    private void requireKeptFloat(WeightFiles files, String name, Tensor source) {
        if (!source.dtype().isFloat() || backend.weightDType(source.dtype()) != source.dtype()) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' is " + source.dtype() + "; the "
                    + backend.name() + " backend keeps float weights as " + backend.weightDType(DType.F32));
        }
    }

    private Tensor uploaded(Tensor source) {
        Tensor destination = allocate(source.dtype(), source.shape());
        backend.upload(destination, source);
        progress.advance(source.numel() * source.dtype().bytes);
        return destination;
    }

    /** A layout linear layer: a float weight, or a quantised one with its F32 row scales. */
    private Linear copiedLinear(WeightFiles files, Map<String, InputQuantization> inputs, String name, long rows,
            long cols) {
        Tensor source = layoutSource(files, name + ".weight", rows, cols);
        DType dtype = source.dtype();
        if (dtype.isFloat()) {
            requireKeptFloat(files, name + ".weight", source);
            return new Linear(uploaded(source), null);
        }
        boolean expected = (dtype == DType.I8 && quantization == WeightQuantization.INT8)
                || (dtype == DType.F8_E4M3 && (quantization == WeightQuantization.FP8 || fp8 != null));
        if (!expected || !backend.supportsQuantizedWeights(dtype)) {
            throw new ModelLoadException(files.fileOf(name + ".weight") + ": tensor '" + name + ".weight' is " + dtype
                    + (expected ? ", which the " + backend.name() + " backend here does not run"
                            : ", which quantization " + quantization.name().toLowerCase(java.util.Locale.ROOT)
                                    + " does not store"));
        }
        Tensor scaleSource = layoutSource(files, name + ".scales", rows);
        if (scaleSource.dtype() != DType.F32) {
            throw new ModelLoadException(files.fileOf(name + ".scales") + ": tensor '" + name + ".scales' is "
                    + scaleSource.dtype() + ", row scales are F32");
        }
        InputQuantization modes = dtype == DType.F8_E4M3 ? inputs.get(name) : null;
        if (dtype == DType.F8_E4M3 && modes == null) {
            throw new ModelLoadException(files.directory() + ": FP8 layer '" + name + "' has no input quantization");
        }
        return new Linear(uploaded(source), uploaded(scaleSource), modes);
    }

    /** Loads one tensor, checking its shape, dtype and values. */
    private Tensor load(WeightFiles files, String name, long... shape) {
        Tensor source = checkedSource(files, name, shape);
        Tensor destination = allocate(backend.weightDType(source.dtype()), shape);
        backend.upload(destination, source);
        return destination;
    }

    /** Loads a linear layer's weight [N, K], quantised as this model's weights are. */
    private Linear loadLinear(WeightFiles files, String name, long... shape) {
        if (quantization == WeightQuantization.NONE && fp8 == null) {
            return new Linear(load(files, name, shape), null);
        }
        return loadLinearFused(files, shape, name, shape);
    }

    /**
     * A quantised copy of a tensor already loaded (the tied LM head's embedding table), read again
     * from the files: checked already, and counted once in the load's progress.
     */
    private Linear quantizedCopy(Tensor loaded, WeightFiles files, String name) {
        Tensor quantized = allocate(DType.I8, loaded.shape());
        Tensor scales = allocate(DType.F32, new long[] {loaded.size(0)});
        backend.quantizeRows(quantized, scales, files.tensor(name));
        return new Linear(quantized, scales);
    }

    /** Loads (name, shape) pairs into consecutive rows of one linear weight of fusedShape, quantised as asked. */
    private Linear loadLinearFused(WeightFiles files, long[] fusedShape, Object... namesAndShapes) {
        if (fp8 != null) {
            List<Boolean> stored = new ArrayList<>();
            for (int i = 0; i < namesAndShapes.length; i += 2) {
                stored.add(fp8.quantizes(moduleOf((String) namesAndShapes[i])));
            }
            if (stored.contains(true) && stored.contains(false)) {
                throw new ModelLoadException(files.fileOf((String) namesAndShapes[0]) + ": quantization_config."
                        + fp8.ignoreField() + " keeps some of " + moduleOf((String) namesAndShapes[0]) + "'s fused"
                        + " projections in float and not the others; Kiln fuses them into one matrix");
            }
            if (stored.get(0)) {
                return loadFp8Fused(files, fusedShape, namesAndShapes);
            }
        }
        if (quantization == WeightQuantization.NONE || (quantization == WeightQuantization.FP8 && fp8 != null)) {
            return new Linear(loadFused(files, fusedShape, namesAndShapes), null);
        }
        // NOTE: quantizeRows gives one scale per row, so fused shards quantise independently.
        DType quantizedType = quantization == WeightQuantization.FP8 ? DType.F8_E4M3 : DType.I8;
        Tensor quantized = allocate(quantizedType, fusedShape);
        Tensor scales = allocate(DType.F32, new long[] {fusedShape[0]});
        long row = 0;
        for (int i = 0; i < namesAndShapes.length; i += 2) {
            Tensor source = checkedSource(files, (String) namesAndShapes[i], (long[]) namesAndShapes[i + 1]);
            long rows = source.size(0);
            backend.quantizeRows(quantized.rowSlice(row, rows), scales.rowSlice(row, rows), source);
            row += rows;
        }
        return new Linear(quantized, scales, quantization == WeightQuantization.FP8 ? InputQuantization.DYNAMIC : null);
    }

    private static String moduleOf(String weightName) {
        return weightName.substring(0, weightName.length() - ".weight".length());
    }

    /**
     * Loads FP8 shards given as (name, shape) pairs into consecutive rows of one F8_E4M3 weight of
     * fusedShape, with a scale per row (see the class comment).
     */
    private Linear loadFp8Fused(WeightFiles files, long[] fusedShape, Object... namesAndShapes) {
        Tensor weight = allocate(DType.F8_E4M3, fusedShape);
        float[] rowScales = new float[Math.toIntExact(fusedShape[0])]; // [N]
        float inputScale = 0;
        float inputScaleUpperBound = 0;
        int row = 0;
        for (int i = 0; i < namesAndShapes.length; i += 2) {
            String name = (String) namesAndShapes[i];
            String module = moduleOf(name);
            Tensor source = checkedSource(files, name, (long[]) namesAndShapes[i + 1], DType.F8_E4M3);
            int rows = Math.toIntExact(source.size(0));
            backend.upload(weight.rowSlice(row, rows), source);
            float[] scales = scaleValues(files, module + ".weight_scale", fp8.perChannel() ? rows : 1, 0);
            for (int r = 0; r < rows; r++) {
                rowScales[row + r] = scales[fp8.perChannel() ? r : 0];
            }
            if (fp8.inputs() == InputQuantization.Mode.STATIC_PER_TENSOR) {
                inputScale = Math.max(inputScale, scaleValues(files, module + ".input_scale", 1, Float.MIN_VALUE)[0]);
            }
            if (files.contains(module + ".input_scale_ub")) {
                inputScaleUpperBound = Math.max(inputScaleUpperBound,
                        scaleValues(files, module + ".input_scale_ub", 1, Float.MIN_VALUE)[0]);
            }
            row += rows;
        }
        Tensor scales = allocate(DType.F32, new long[] {fusedShape[0]});
        Tensor host = HostTensors.floats(rowScales, rowScales.length);
        try {
            backend.upload(scales, host);
        } finally {
            HostTensors.release(host);
        }
        InputQuantization inputs = inputScaleUpperBound > 0 ? InputQuantization.dynamicPerToken(inputScaleUpperBound)
                : fp8.inputQuantization(inputScale);
        return new Linear(weight, scales, inputs);
    }

    /**
     * The values of a scale tensor of {@code count} elements (any float dtype; shape [count],
     * [count, 1], or [] / [1] / [1, 1] for one), each finite and at least {@code min}.
     */
    private float[] scaleValues(WeightFiles files, String name, int count, float min) {
        Tensor source = files.tensor(name);
        long[] shape = source.shape();
        boolean shapeFits = source.numel() == count && (shape.length == 0 || shape[0] == count)
                && (shape.length < 2 || shape[1] == 1) && shape.length <= 2;
        if (!shapeFits || !source.dtype().isFloat()) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has shape "
                    + Arrays.toString(shape) + " and dtype " + source.dtype() + "; " + fp8.format() + " with "
                    + (fp8.perChannel() ? "a scale per channel" : "a scale per tensor") + " needs " + count
                    + (count == 1 ? " value" : " values (one per output row)") + " of F32, F16 or BF16");
        }
        float[] values = new float[count];
        long host = KilnCpu.kiln_cpu_alloc(4L * count);
        try {
            KilnCpu.kiln_cpu_convert(host, DType.F32.code, source.address(), source.dtype().code, count);
            KilnCpu.kiln_cpu_copy(values, host, 4L * count);
        } finally {
            KilnCpu.kiln_cpu_free(host);
        }
        if (progress != null) {
            progress.advance(source.numel() * source.dtype().bytes);
        }
        for (int i = 0; i < count; i++) {
            if (!(Float.isFinite(values[i]) && values[i] >= min)) {
                throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' holds " + values[i]
                        + " at element " + i + "; scales must be finite and " + (min > 0 ? "positive" : "at least 0"));
            }
        }
        return values;
    }

    /** Loads tensors given as (name, shape) pairs into consecutive rows of one tensor of fusedShape. */
    private Tensor loadFused(WeightFiles files, long[] fusedShape, Object... namesAndShapes) {
        Tensor[] sources = new Tensor[namesAndShapes.length / 2];
        for (int i = 0; i < sources.length; i++) {
            sources[i] = checkedSource(files, (String) namesAndShapes[2 * i], (long[]) namesAndShapes[2 * i + 1]);
        }
        Tensor fused = allocate(backend.weightDType(sources[0].dtype()), fusedShape);
        long row = 0;
        for (Tensor source : sources) {
            backend.upload(fused.rowSlice(row, source.size(0)), source);
            row += source.size(0);
        }
        return fused;
    }

    private Tensor checkedSource(WeightFiles files, String name, long[] shape) {
        return checkedSource(files, name, shape, null);
    }

    /** A tensor of the given shape, float or (fp8Dtype not null) of that dtype, all its values finite. */
    private Tensor checkedSource(WeightFiles files, String name, long[] shape, DType fp8Dtype) {
        Tensor source = files.tensor(name);
        if (!Arrays.equals(source.shape(), shape)) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has shape "
                    + Arrays.toString(source.shape()) + ", the config needs " + Arrays.toString(shape));
        }
        if (fp8Dtype != null && source.dtype() != fp8Dtype) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has dtype " + source.dtype()
                    + "; quantization_config (" + fp8.format() + ") stores it as " + fp8Dtype + " unless "
                    + "quantization_config." + fp8.ignoreField() + " lists '" + moduleOf(name) + "'");
        }
        if (fp8Dtype == null && !source.dtype().isFloat()) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has dtype " + source.dtype()
                    + ", weights must be F32, F16 or BF16" + (fp8 == null ? "" : " (quantization_config."
                    + fp8.ignoreField() + " keeps this module in float)"));
        }
        long bad = KilnCpu.kiln_cpu_find_non_finite(source.address(), source.dtype().code, source.numel());
        if (progress != null) {
            progress.advance(source.numel() * source.dtype().bytes);
        }
        if (bad >= 0) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' holds a NaN or infinite value"
                    + " at element " + bad);
        }
        return source;
    }

    private Tensor allocate(DType dtype, long[] shape) {
        Tensor tensor = backend.allocate(dtype, shape);
        owned.add(tensor);
        bytes += tensor.numel() * dtype.bytes;
        return tensor;
    }

    @Override
    public void close() {
        owned.forEach(backend::free);
        owned.clear();
        layers.clear();
    }
}
