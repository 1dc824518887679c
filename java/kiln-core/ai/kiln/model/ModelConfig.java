package ai.kiln.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The blueprint of a Llama-family model, read from a Hugging Face config.json. The supported
 * architectures share one forward pass; their differences are the flags here.
 *
 * @param architecture        the config's architectures[0]
 * @param vocabSize           rows of the embedding table
 * @param hiddenSize          model width H
 * @param intermediateSize    MLP width I
 * @param numLayers           decoder layers
 * @param numHeads            query heads Hq
 * @param numKvHeads          key/value heads Hk (Hq % Hk == 0: MHA, GQA or MQA)
 * @param headDim             D
 * @param rmsNormEps          epsilon of every RMSNorm
 * @param ropeTheta           rotary base
 * @param ropeScaling         rotary frequency scaling
 * @param maxPositions        max_position_embeddings: the longest context
 * @param tieWordEmbeddings   the LM head reuses the embedding table
 * @param qkvBias             q/k/v projections have a bias (Qwen2; Llama with attention_bias)
 * @param outputBias          the output projection has a bias (Llama with attention_bias)
 * @param qkNorm              per-head RMSNorm on q and k before rotary (Qwen3)
 * @param torchDType          the config's stored dtype name ("bfloat16", "float32", ...), may be null
 * @param bosTokenId          may be -1
 * @param eosTokenIds         token ids that end generation (may be empty)
 * @param fp8                 the checkpoint's FP8 scheme (quantization_config), null for float weights
 */
public record ModelConfig(String architecture, int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
        int numHeads, int numKvHeads, int headDim, double rmsNormEps, double ropeTheta, RopeScaling ropeScaling,
        int maxPositions, boolean tieWordEmbeddings, boolean qkvBias, boolean outputBias, boolean qkNorm,
        String torchDType, int bosTokenId, List<Integer> eosTokenIds, Fp8Checkpoint fp8) {

    public static final List<String> SUPPORTED_ARCHITECTURES = List.of(
            "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM");

    // NOTE: the upper bounds lie far beyond any published checkpoint; they keep every derived size
    // in range (qSize() + 2 kvSize() <= 3 * 2^24 fits an int, a block table row of
    // max_position_embeddings / block size fits an int) so that no later arithmetic can wrap.
    public static final int MAX_VOCAB_SIZE = Integer.MAX_VALUE;
    public static final int MAX_HIDDEN_SIZE = 1 << 20;
    public static final int MAX_INTERMEDIATE_SIZE = 1 << 22;
    public static final int MAX_LAYERS = 1 << 12;
    public static final int MAX_HEADS = 1 << 12;
    public static final int MAX_HEAD_DIM = 1 << 12;
    public static final int MAX_POSITIONS = 1 << 30;

    /** What a config without max_position_embeddings gets (transformers' LlamaConfig default). */
    private static final int DEFAULT_MAX_POSITIONS = 2048;

    /** The file names errors start with; {@link #load} replaces them by the files' paths. */
    private static final String CONFIG_FILE = "config.json";
    private static final String GENERATION_FILE = "generation_config.json";

    public ModelConfig {
        requireRange("vocab_size", vocabSize, 1, MAX_VOCAB_SIZE);
        requireRange("hidden_size", hiddenSize, 1, MAX_HIDDEN_SIZE);
        requireRange("intermediate_size", intermediateSize, 1, MAX_INTERMEDIATE_SIZE);
        requireRange("num_hidden_layers", numLayers, 1, MAX_LAYERS);
        requireRange("num_attention_heads", numHeads, 1, MAX_HEADS);
        requireRange("num_key_value_heads", numKvHeads, 1, MAX_HEADS);
        requireRange("head_dim", headDim, 1, MAX_HEAD_DIM);
        requireRange("max_position_embeddings", maxPositions, 1, MAX_POSITIONS);
        if (numHeads % numKvHeads != 0) {
            throw new ModelLoadException("config.json: num_attention_heads " + numHeads
                    + " is not a multiple of num_key_value_heads " + numKvHeads);
        }
        if (headDim % 2 != 0) {
            throw new ModelLoadException("config.json: head_dim " + headDim + " must be even for rotary embedding");
        }
        if (!(rmsNormEps > 0) || !(ropeTheta > 0) || !Double.isFinite(rmsNormEps) || !Double.isFinite(ropeTheta)) {
            throw new ModelLoadException("config.json: rms_norm_eps and rope_theta must be finite numbers > 0, got "
                    + rmsNormEps + " and " + ropeTheta);
        }
        requireRange("bos_token_id", bosTokenId, -1, vocabSize - 1);
        eosTokenIds = List.copyOf(eosTokenIds);
        for (int eos : eosTokenIds) {
            requireRange("eos_token_id", eos, 0, vocabSize - 1);
        }
    }

    private static void requireRange(String field, int value, int min, int max) {
        if (value < min || value > max) {
            throw new ModelLoadException("config.json: " + field + " must be in [" + min + ", " + max + "], got " + value);
        }
    }

    public int qSize() {
        return numHeads * headDim;
    }

    public int kvSize() {
        return numKvHeads * headDim;
    }

    /** Reads config.json and, if present, generation_config.json of a model directory. */
    public static ModelConfig load(Path modelDir) {
        Path configFile = modelDir.resolve("config.json");
        Path generationFile = modelDir.resolve("generation_config.json");
        JsonNode config = readJson(configFile, true);
        JsonNode generation = readJson(generationFile, false);
        try {
            return fromJson(config, generation);
        } catch (ModelLoadException e) {
            String message = e.getMessage();
            if (message.startsWith(GENERATION_FILE + ": ")) {
                message = generationFile + message.substring(GENERATION_FILE.length());
            } else if (message.startsWith(CONFIG_FILE + ": ")) {
                message = configFile + message.substring(CONFIG_FILE.length());
            } else {
                message = configFile + ": " + message;
            }
            throw new ModelLoadException(message, e);
        }
    }

    static JsonNode readJson(Path file, boolean required) {
        try {
            return new ObjectMapper().readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            if (required) {
                throw new ModelLoadException("missing " + file.getFileName() + " in " + file.getParent());
            }
            return null;
        } catch (IOException e) {
            throw new ModelLoadException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Parses both config forms: published checkpoints (rope_theta, rope_scaling) and transformers 5
     * (rope_parameters). Every field read is type- and range-checked; null stands for "none" only
     * where transformers reads it so (rope_scaling, rope_parameters, head_dim, num_key_value_heads,
     * bos/eos ids, the dtype name).
     */
    public static ModelConfig fromJson(JsonNode config, JsonNode generation) {
        if (config == null || !config.isObject()) {
            throw new ModelLoadException(CONFIG_FILE + ": not a JSON object");
        }
        if (generation != null && !generation.isObject()) {
            throw new ModelLoadException(GENERATION_FILE + ": not a JSON object");
        }
        ConfigFields fields = new ConfigFields(CONFIG_FILE, "", config);
        JsonNode architectures = config.get("architectures");
        if (architectures == null || !architectures.isArray() || architectures.isEmpty()) {
            throw new ModelLoadException(CONFIG_FILE + ": no 'architectures' list");
        }
        if (!architectures.get(0).isTextual()) {
            throw new ModelLoadException(CONFIG_FILE + ": architectures[0] must be a string, got "
                    + ConfigFields.describe(architectures.get(0)));
        }
        String architecture = architectures.get(0).textValue();
        if (!SUPPORTED_ARCHITECTURES.contains(architecture)) {
            throw new ModelLoadException(CONFIG_FILE + ": unsupported architecture '" + architecture
                    + "'; supported: " + String.join(", ", SUPPORTED_ARCHITECTURES));
        }
        int hidden = fields.requiredInt("hidden_size", 1, MAX_HIDDEN_SIZE);
        int heads = fields.requiredInt("num_attention_heads", 1, MAX_HEADS);
        int intermediate = fields.requiredInt("intermediate_size", 1, MAX_INTERMEDIATE_SIZE);
        int layers = fields.requiredInt("num_hidden_layers", 1, MAX_LAYERS);
        int vocab = fields.requiredInt("vocab_size", 1, MAX_VOCAB_SIZE);
        int kvHeads = fields.optionalInt("num_key_value_heads", 1, MAX_HEADS, heads, true);
        int headDim = fields.optionalInt("head_dim", 1, MAX_HEAD_DIM, hidden / heads, true);
        if (headDim == 0) {
            throw new ModelLoadException(CONFIG_FILE + ": head_dim is absent and hidden_size " + hidden
                    + " / num_attention_heads " + heads + " is 0");
        }
        int maxPositions = fields.optionalInt("max_position_embeddings", 1, MAX_POSITIONS, DEFAULT_MAX_POSITIONS,
                false);
        double rmsNormEps = fields.positiveNumber("rms_norm_eps", 1e-6);

        JsonNode ropeParameters = fields.objectOrNull("rope_parameters");
        JsonNode ropeScalingNode = fields.objectOrNull("rope_scaling");
        String ropeScalingField = "rope_scaling";
        double ropeTheta = fields.positiveNumber("rope_theta", 10000.0);
        if (ropeParameters != null) {
            ropeTheta = new ConfigFields(CONFIG_FILE, "rope_parameters.", ropeParameters)
                    .positiveNumber("rope_theta", ropeTheta);
            if (ropeScalingNode == null) {
                ropeScalingNode = ropeParameters;
                ropeScalingField = "rope_parameters";
            }
        }
        RopeScaling ropeScaling = ropeScalingNode == null ? RopeScaling.NONE
                : parseRopeScaling(new ConfigFields(CONFIG_FILE, ropeScalingField + ".", ropeScalingNode));

        boolean qkvBias;
        boolean outputBias;
        boolean qkNorm = false;
        boolean attentionBias = fields.bool("attention_bias", false);
        switch (architecture) {
            case "Qwen2ForCausalLM" -> {
                qkvBias = true;
                outputBias = false;
            }
            case "Qwen3ForCausalLM" -> {
                qkvBias = attentionBias;
                outputBias = qkvBias;
                qkNorm = true;
            }
            default -> {
                qkvBias = attentionBias;
                outputBias = qkvBias;
            }
        }
        if (fields.bool("mlp_bias", false)) {
            throw new ModelLoadException(CONFIG_FILE + ": mlp_bias=true is not supported");
        }
        String activation = fields.text("hidden_act", "silu", false);
        if (!activation.equals("silu")) {
            throw new ModelLoadException(CONFIG_FILE + ": hidden_act '" + activation + "' is not supported (only silu)");
        }
        boolean tieWordEmbeddings = fields.bool("tie_word_embeddings", false);

        List<Integer> eos = new ArrayList<>();
        addNew(eos, fields.tokenIds("eos_token_id", vocab));
        int bos = fields.tokenId("bos_token_id", vocab);
        if (generation != null) {
            ConfigFields generationFields = new ConfigFields(GENERATION_FILE, "", generation);
            addNew(eos, generationFields.tokenIds("eos_token_id", vocab));
            // Not used here, but transformers' generate() reads it: a broken value is refused all the same.
            generationFields.tokenId("bos_token_id", vocab);
        }
        String dtype = fields.text("torch_dtype", null, true);
        if (dtype == null) {
            dtype = fields.text("dtype", null, true);
        }

        return new ModelConfig(architecture, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, rmsNormEps,
                ropeTheta, ropeScaling, maxPositions, tieWordEmbeddings, qkvBias, outputBias, qkNorm, dtype, bos, eos,
                Fp8Checkpoint.fromConfig(CONFIG_FILE, fields.objectOrNull("quantization_config")));
    }

    private static RopeScaling parseRopeScaling(ConfigFields node) {
        String type = node.text("rope_type", null, false);
        if (type == null) {
            type = node.text("type", "default", false);
        }
        boolean linear = type.equals("linear");
        boolean llama3 = type.equals("llama3");
        if (!linear && !llama3 && !type.equals("default")) {
            throw new ModelLoadException(CONFIG_FILE + ": unsupported rope scaling type '" + type
                    + "' (supported: default, linear, llama3)");
        }
        if ((linear || llama3) && !node.has("factor")) {
            throw node.problem("factor", "is missing (" + type + " rope scaling needs it)");
        }
        if (llama3) {
            for (String field : List.of("low_freq_factor", "high_freq_factor", "original_max_position_embeddings")) {
                if (!node.has(field)) {
                    throw node.problem(field, "is missing (llama3 rope scaling needs it)");
                }
            }
        }
        double factor = node.positiveNumber("factor", 1.0);
        double lowFreqFactor = llama3 ? node.positiveNumber("low_freq_factor", 0) : 0;
        double highFreqFactor = llama3 ? node.positiveNumber("high_freq_factor", 0) : 0;
        int originalMaxPositions = llama3
                ? node.optionalInt("original_max_position_embeddings", 1, MAX_POSITIONS, 0, false) : 0;
        try {
            return new RopeScaling(type, factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException(CONFIG_FILE + ": " + e.getMessage(), e);
        }
    }

    private static void addNew(List<Integer> out, List<Integer> ids) {
        for (int id : ids) {
            if (!out.contains(id)) {
                out.add(id);
            }
        }
    }
}
