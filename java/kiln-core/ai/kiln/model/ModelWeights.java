package ai.kiln.model;

import ai.kiln.backend.Backend;
import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A model's weights in backend memory. The q/k/v projections are fused into one matrix and the
 * gate/up projections into another, so each is a single GEMM per layer.
 */
public final class ModelWeights implements AutoCloseable {

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
    public record Layer(Tensor inputNorm, Tensor qkv, Tensor qkvBias, Tensor qNorm, Tensor kNorm, Tensor output,
            Tensor outputBias, Tensor postNorm, Tensor gateUp, Tensor down) {
    }

    private final Backend backend;
    private final List<Tensor> owned = new ArrayList<>();
    private Tensor embedding;   // [V, H]
    private Tensor finalNorm;   // [H]
    private Tensor lmHead;      // [V, H]; the embedding itself when tied
    private final List<Layer> layers = new ArrayList<>();
    private long bytes;
    private LoadProgress progress;

    private ModelWeights(Backend backend) {
        this.backend = backend;
    }

    public Tensor embedding() {
        return embedding;
    }

    public Tensor finalNorm() {
        return finalNorm;
    }

    public Tensor lmHead() {
        return lmHead;
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
        ModelWeights weights = new ModelWeights(backend);
        try {
            weights.loadAll(config, files);
            return weights;
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    private void loadAll(ModelConfig c, WeightFiles files) {
        requireExactTensorSet(c, files);
        progress = LoadProgress.onStderr(files.totalTensorBytes());
        long h = c.hiddenSize();
        long q = c.qSize();
        long kv = c.kvSize();
        long inter = c.intermediateSize();
        long d = c.headDim();
        embedding = load(files, "model.embed_tokens.weight", c.vocabSize(), h);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            Tensor inputNorm = load(files, p + "input_layernorm.weight", h);
            Tensor qkv = loadFused(files, new long[] {q + 2 * kv, h},
                    p + "self_attn.q_proj.weight", new long[] {q, h},
                    p + "self_attn.k_proj.weight", new long[] {kv, h},
                    p + "self_attn.v_proj.weight", new long[] {kv, h});
            Tensor qkvBias = !c.qkvBias() ? null : loadFused(files, new long[] {q + 2 * kv},
                    p + "self_attn.q_proj.bias", new long[] {q},
                    p + "self_attn.k_proj.bias", new long[] {kv},
                    p + "self_attn.v_proj.bias", new long[] {kv});
            Tensor qNorm = c.qkNorm() ? load(files, p + "self_attn.q_norm.weight", d) : null;
            Tensor kNorm = c.qkNorm() ? load(files, p + "self_attn.k_norm.weight", d) : null;
            Tensor output = load(files, p + "self_attn.o_proj.weight", h, q);
            Tensor outputBias = c.outputBias() ? load(files, p + "self_attn.o_proj.bias", h) : null;
            Tensor postNorm = load(files, p + "post_attention_layernorm.weight", h);
            Tensor gateUp = loadFused(files, new long[] {2 * inter, h},
                    p + "mlp.gate_proj.weight", new long[] {inter, h},
                    p + "mlp.up_proj.weight", new long[] {inter, h});
            Tensor down = load(files, p + "mlp.down_proj.weight", h, inter);
            layers.add(new Layer(inputNorm, qkv, qkvBias, qNorm, kNorm, output, outputBias, postNorm, gateUp, down));
        }
        finalNorm = load(files, "model.norm.weight", h);
        if (c.tieWordEmbeddings() && !files.contains("lm_head.weight")) {
            lmHead = embedding;
        } else {
            lmHead = load(files, "lm_head.weight", c.vocabSize(), h);
        }
        progress.finish();
    }

    /** The tensor names the config calls for; lm_head.weight is optional when the embeddings are tied. */
    static Set<String> expectedTensors(ModelConfig c, boolean withLmHead) {
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
        String prefix = "model.layers.";
        String suffix = ".self_attn.rotary_emb.inv_freq";
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

    /** Loads one tensor, checking its shape, dtype and values. */
    private Tensor load(WeightFiles files, String name, long... shape) {
        Tensor source = checkedSource(files, name, shape);
        Tensor destination = allocate(backend.weightDType(source.dtype()), shape);
        backend.upload(destination, source);
        return destination;
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
        Tensor source = files.tensor(name);
        if (!Arrays.equals(source.shape(), shape)) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has shape "
                    + Arrays.toString(source.shape()) + ", the config needs " + Arrays.toString(shape));
        }
        if (!source.dtype().isFloat()) {
            throw new ModelLoadException(files.fileOf(name) + ": tensor '" + name + "' has dtype " + source.dtype()
                    + ", weights must be F32, F16 or BF16");
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
