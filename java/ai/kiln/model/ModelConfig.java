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
 */
public record ModelConfig(String architecture, int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
        int numHeads, int numKvHeads, int headDim, double rmsNormEps, double ropeTheta, RopeScaling ropeScaling,
        int maxPositions, boolean tieWordEmbeddings, boolean qkvBias, boolean outputBias, boolean qkNorm,
        String torchDType, int bosTokenId, List<Integer> eosTokenIds) {

    public static final List<String> SUPPORTED_ARCHITECTURES = List.of(
            "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM");

    public ModelConfig {
        requirePositive("vocab_size", vocabSize);
        requirePositive("hidden_size", hiddenSize);
        requirePositive("intermediate_size", intermediateSize);
        requirePositive("num_hidden_layers", numLayers);
        requirePositive("num_attention_heads", numHeads);
        requirePositive("num_key_value_heads", numKvHeads);
        requirePositive("head_dim", headDim);
        requirePositive("max_position_embeddings", maxPositions);
        if (numHeads % numKvHeads != 0) {
            throw new ModelLoadException("config.json: num_attention_heads " + numHeads
                    + " is not a multiple of num_key_value_heads " + numKvHeads);
        }
        if (headDim % 2 != 0) {
            throw new ModelLoadException("config.json: head_dim " + headDim + " must be even for rotary embedding");
        }
        if (!(rmsNormEps > 0) || !(ropeTheta > 0)) {
            throw new ModelLoadException("config.json: rms_norm_eps and rope_theta must be > 0");
        }
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    private static void requirePositive(String field, int value) {
        if (value <= 0) {
            throw new ModelLoadException("config.json: " + field + " must be > 0, got " + value);
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
        JsonNode config = readJson(configFile, true);
        JsonNode generation = readJson(modelDir.resolve("generation_config.json"), false);
        try {
            return fromJson(config, generation);
        } catch (ModelLoadException e) {
            throw new ModelLoadException(configFile + ": " + e.getMessage().replaceFirst("^config\\.json: ", ""), e);
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

    /** Parses both config forms: published checkpoints (rope_theta, rope_scaling) and transformers 5 (rope_parameters). */
    public static ModelConfig fromJson(JsonNode config, JsonNode generation) {
        if (config == null || !config.isObject()) {
            throw new ModelLoadException("config.json: not a JSON object");
        }
        JsonNode architectures = config.get("architectures");
        if (architectures == null || !architectures.isArray() || architectures.isEmpty()) {
            throw new ModelLoadException("config.json: no 'architectures' list");
        }
        String architecture = architectures.get(0).asText();
        if (!SUPPORTED_ARCHITECTURES.contains(architecture)) {
            throw new ModelLoadException("config.json: unsupported architecture '" + architecture
                    + "'; supported: " + String.join(", ", SUPPORTED_ARCHITECTURES));
        }
        int hidden = requiredInt(config, "hidden_size");
        int heads = requiredInt(config, "num_attention_heads");
        int kvHeads = config.hasNonNull("num_key_value_heads") ? requiredInt(config, "num_key_value_heads") : heads;
        int headDim = config.hasNonNull("head_dim") ? requiredInt(config, "head_dim") : hidden / Math.max(heads, 1);

        JsonNode ropeParameters = config.get("rope_parameters");
        JsonNode ropeScalingNode = config.get("rope_scaling");
        double ropeTheta;
        if (ropeParameters != null && ropeParameters.isObject()) {
            ropeTheta = ropeParameters.path("rope_theta").asDouble(config.path("rope_theta").asDouble(10000.0));
            if (ropeScalingNode == null || ropeScalingNode.isNull()) {
                ropeScalingNode = ropeParameters;
            }
        } else {
            ropeTheta = config.path("rope_theta").asDouble(10000.0);
        }
        RopeScaling ropeScaling = parseRopeScaling(ropeScalingNode);

        boolean qkvBias;
        boolean outputBias;
        boolean qkNorm = false;
        switch (architecture) {
            case "Qwen2ForCausalLM" -> {
                qkvBias = true;
                outputBias = false;
            }
            case "Qwen3ForCausalLM" -> {
                qkvBias = config.path("attention_bias").asBoolean(false);
                outputBias = qkvBias;
                qkNorm = true;
            }
            default -> {
                qkvBias = config.path("attention_bias").asBoolean(false);
                outputBias = qkvBias;
            }
        }
        if (config.path("mlp_bias").asBoolean(false)) {
            throw new ModelLoadException("config.json: mlp_bias=true is not supported");
        }
        String activation = config.path("hidden_act").asText("silu");
        if (!activation.equals("silu")) {
            throw new ModelLoadException("config.json: hidden_act '" + activation + "' is not supported (only silu)");
        }

        List<Integer> eos = new ArrayList<>();
        addTokenIds(eos, config.get("eos_token_id"));
        if (generation != null) {
            addTokenIds(eos, generation.get("eos_token_id"));
        }
        int bos = config.path("bos_token_id").isInt() ? config.get("bos_token_id").asInt() : -1;
        String dtype = config.hasNonNull("torch_dtype") ? config.get("torch_dtype").asText()
                : config.hasNonNull("dtype") ? config.get("dtype").asText() : null;

        return new ModelConfig(architecture, requiredInt(config, "vocab_size"), hidden,
                requiredInt(config, "intermediate_size"), requiredInt(config, "num_hidden_layers"), heads, kvHeads,
                headDim, config.path("rms_norm_eps").asDouble(1e-6), ropeTheta, ropeScaling,
                config.path("max_position_embeddings").asInt(2048),
                config.path("tie_word_embeddings").asBoolean(false), qkvBias, outputBias, qkNorm, dtype, bos, eos);
    }

    private static RopeScaling parseRopeScaling(JsonNode node) {
        if (node == null || node.isNull()) {
            return RopeScaling.NONE;
        }
        String type = node.hasNonNull("rope_type") ? node.get("rope_type").asText()
                : node.hasNonNull("type") ? node.get("type").asText() : "default";
        try {
            return new RopeScaling(type, node.path("factor").asDouble(1.0), node.path("low_freq_factor").asDouble(0),
                    node.path("high_freq_factor").asDouble(0), node.path("original_max_position_embeddings").asInt(0));
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException("config.json: " + e.getMessage(), e);
        }
    }

    private static void addTokenIds(List<Integer> out, JsonNode node) {
        if (node == null || node.isNull()) {
            return;
        }
        if (node.isArray()) {
            node.forEach(id -> addTokenIds(out, id));
        } else if (node.isInt() && !out.contains(node.asInt())) {
            out.add(node.asInt());
        }
    }

    private static int requiredInt(JsonNode config, String field) {
        JsonNode value = config.get(field);
        if (value == null || value.isNull()) {
            throw new ModelLoadException("config.json: missing '" + field + "'");
        }
        if (!value.isIntegralNumber() || !value.canConvertToInt()) {
            throw new ModelLoadException("config.json: '" + field + "' must be an integer, got " + value);
        }
        return value.asInt();
    }
}
