package ai.kiln.model;

import ai.kiln.backend.InputQuantization;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The FP8 (e4m3) scheme a checkpoint's config.json {@code quantization_config} describes, in any
 * of the three forms published on Hugging Face:
 * <ul>
 *   <li>compressed-tensors, {@code format: "float-quantized"}: one config group of 8-bit float
 *       weights with strategy "tensor" or "channel"; input activations static per tensor,
 *       dynamic per token, or absent (weight-only, W8A16); the {@code ignore} list;
 *   <li>AutoFP8, {@code quant_method: "fp8"}: a scale per tensor, {@code activation_scheme}
 *       "static" (an input_scale per layer) or "dynamic"; {@code ignored_layers};
 *   <li>{@code fbgemm_fp8}: a scale per output channel, dynamic per-token activations bounded by
 *       {@code activation_scale_ub}; {@code modules_to_not_convert}.
 * </ul>
 * A quantised linear module stores {@code weight} as F8_E4M3 and {@code weight_scale} (one value,
 * or one per output row), plus {@code input_scale} (one value) when its inputs are static.
 *
 * <p>NOTE: AutoFP8's "dynamic" activations are scaled per token here, as fbgemm's and
 * compressed-tensors' token strategy are, not per tensor: one dynamic mode for every format.
 *
 * @param format         the quant_method, for messages ("compressed-tensors", "fp8", "fbgemm_fp8")
 * @param perChannel     weight_scale has one value per output row (else one per tensor)
 * @param inputs         the input mode; a static scale is read per module from its input_scale
 * @param inputScaleUpperBound fbgemm's activation_scale_ub, 0 for none
 * @param ignored        the modules kept in float: names, or "re:" patterns (compressed-tensors)
 * @param ignoreField    the field that lists them, for messages
 * @param kvCacheScales  the checkpoint stores a per-tensor FP8 scale for each layer's K and V
 *                       (compressed-tensors' kv_cache_scheme: {@code self_attn.k_scale}, {@code
 *                       v_scale}); Kiln's FP8 cache scales each row itself, so they are not read
 */
public record Fp8Checkpoint(String format, boolean perChannel, InputQuantization.Mode inputs,
        float inputScaleUpperBound, List<String> ignored, String ignoreField, boolean kvCacheScales) {

    private static final String FIELD = "quantization_config";

    public Fp8Checkpoint {
        ignored = List.copyOf(ignored);
    }

    /** Whether a linear module (e.g. "model.layers.0.self_attn.q_proj", "lm_head") is stored in FP8. */
    public boolean quantizes(String module) {
        for (String entry : ignored) {
            if (entry.startsWith("re:")) {
                if (Pattern.compile(entry.substring(3)).matcher(module).matches()) {
                    return false;
                }
            } else if (module.equals(entry) || module.endsWith("." + entry) || module.startsWith(entry + ".")
                    || module.contains("." + entry + ".")) {
                return false;
            }
        }
        return true;
    }

    /** The input quantization of a module whose static input scale (if any) is {@code staticScale}. */
    public InputQuantization inputQuantization(float staticScale) {
        return switch (inputs) {
            case NONE -> InputQuantization.WEIGHT_ONLY;
            case DYNAMIC_PER_TOKEN -> InputQuantization.dynamicPerToken(inputScaleUpperBound);
            case STATIC_PER_TENSOR -> InputQuantization.staticPerTensor(staticScale);
        };
    }

    /**
     * The scheme of a config's quantization_config, null when there is none; any value Kiln does
     * not run is refused, naming the field.
     */
    static Fp8Checkpoint fromConfig(String file, JsonNode config) {
        if (config == null) {
            return null;
        }
        ConfigFields fields = new ConfigFields(file, FIELD + ".", config);
        String method = fields.text("quant_method", null, false);
        if (method == null) {
            throw fields.problem("quant_method", "is missing (supported: compressed-tensors, fp8, fbgemm_fp8)");
        }
        return switch (method) {
            case "compressed-tensors" -> compressedTensors(file, fields, config);
            case "fp8" -> autoFp8(fields, config);
            case "fbgemm_fp8" -> fbgemm(fields, config);
            default -> throw fields.problem("quant_method", "'" + method
                    + "' is not supported (supported: compressed-tensors with format float-quantized, fp8, fbgemm_fp8)");
        };
    }

    private static Fp8Checkpoint compressedTensors(String file, ConfigFields fields, JsonNode config) {
        String format = fields.text("format", null, true);
        if (!"float-quantized".equals(format)) {
            throw fields.problem("format", "'" + format + "' is not supported (only float-quantized: FP8 e4m3)");
        }
        JsonNode kvScheme = fields.objectOrNull("kv_cache_scheme");
        if (kvScheme != null) {
            // Per-tensor e4m3 scales of K and V (what llm-compressor writes). Kiln's FP8 cache
            // (--kv-cache-dtype fp8) gives each row its own scale instead, so they are accepted
            // and not read; without that flag the cache holds the activations' type, as vLLM's auto.
            ConfigFields kvFields = new ConfigFields(file, FIELD + ".kv_cache_scheme.", kvScheme);
            requireFloat8(kvFields, kvScheme);
            String kvStrategy = kvFields.text("strategy", null, false);
            if (!"tensor".equals(kvStrategy) || kvFields.bool("dynamic", false)) {
                throw kvFields.problem("strategy", "'" + kvStrategy + "' with dynamic " + kvFields.bool("dynamic", false)
                        + " is not supported (tensor with dynamic false: a stored scale per layer's K and V)");
            }
        }
        JsonNode groups = fields.objectOrNull("config_groups");
        if (groups == null || groups.size() != 1) {
            throw fields.problem("config_groups", "must hold exactly one group, got "
                    + (groups == null ? "none" : groups.size()));
        }
        Map.Entry<String, JsonNode> group = groups.fields().next();
        String prefix = FIELD + ".config_groups." + group.getKey() + ".";
        if (!group.getValue().isObject()) {
            throw new ModelLoadException(file + ": " + prefix.substring(0, prefix.length() - 1) + " must be an object");
        }
        ConfigFields groupFields = new ConfigFields(file, prefix, group.getValue());
        JsonNode targets = group.getValue().get("targets");
        if (targets == null || !targets.isArray() || targets.size() != 1 || !"Linear".equals(targets.get(0).asText())) {
            throw groupFields.problem("targets", "must be [\"Linear\"], got "
                    + (targets == null ? "nothing" : ConfigFields.describe(targets)));
        }
        JsonNode weights = groupFields.objectOrNull("weights");
        if (weights == null) {
            throw groupFields.problem("weights", "is missing");
        }
        ConfigFields weightFields = new ConfigFields(file, prefix + "weights.", weights);
        requireFloat8(weightFields, weights);
        String strategy = weightFields.text("strategy", null, false);
        if (!"tensor".equals(strategy) && !"channel".equals(strategy)) {
            throw weightFields.problem("strategy", "'" + strategy + "' is not supported (tensor or channel)");
        }
        if (weightFields.bool("dynamic", false)) {
            throw weightFields.problem("dynamic", "must be false: weights carry stored scales");
        }
        InputQuantization.Mode inputs = InputQuantization.Mode.NONE;
        JsonNode activations = groupFields.objectOrNull("input_activations");
        if (activations != null) {
            ConfigFields inputFields = new ConfigFields(file, prefix + "input_activations.", activations);
            requireFloat8(inputFields, activations);
            String inputStrategy = inputFields.text("strategy", null, false);
            boolean dynamic = inputFields.bool("dynamic", false);
            if ("token".equals(inputStrategy) && dynamic) {
                inputs = InputQuantization.Mode.DYNAMIC_PER_TOKEN;
            } else if ("tensor".equals(inputStrategy) && !dynamic) {
                inputs = InputQuantization.Mode.STATIC_PER_TENSOR;
            } else {
                throw inputFields.problem("strategy", "'" + inputStrategy + "' with dynamic " + dynamic
                        + " is not supported (token with dynamic true, or tensor with dynamic false)");
            }
        }
        if (groupFields.objectOrNull("output_activations") != null) {
            throw groupFields.problem("output_activations", "is not supported");
        }
        return new Fp8Checkpoint("compressed-tensors", "channel".equals(strategy), inputs, 0,
                names(fields, config, "ignore"), "ignore", kvScheme != null);
    }

    private static void requireFloat8(ConfigFields fields, JsonNode node) {
        Long bits = fields.integer("num_bits", 0, Integer.MAX_VALUE, false);
        if (bits == null || bits != 8) {
            throw fields.problem("num_bits", "must be 8, got " + bits);
        }
        String type = fields.text("type", null, false);
        if (!"float".equals(type)) {
            throw fields.problem("type", "'" + type + "' is not supported (only float: FP8 e4m3)");
        }
        if (!fields.bool("symmetric", true)) {
            throw fields.problem("symmetric", "must be true: e4m3 scales have no zero point");
        }
        if (node.has("group_size") && !node.get("group_size").isNull()) {
            throw fields.problem("group_size", "is not supported (group-wise scales), got "
                    + ConfigFields.describe(node.get("group_size")));
        }
    }

    private static Fp8Checkpoint autoFp8(ConfigFields fields, JsonNode config) {
        if (config.has("weight_block_size") && !config.get("weight_block_size").isNull()) {
            throw fields.problem("weight_block_size", "is not supported (block-wise FP8 scales); only a scale per"
                    + " tensor");
        }
        String scheme = fields.text("activation_scheme", "dynamic", false);
        InputQuantization.Mode inputs = switch (scheme) {
            case "static" -> InputQuantization.Mode.STATIC_PER_TENSOR;
            case "dynamic" -> InputQuantization.Mode.DYNAMIC_PER_TOKEN;
            default -> throw fields.problem("activation_scheme", "'" + scheme + "' is not supported (static or dynamic)");
        };
        String fmt = fields.text("fmt", "e4m3", false);
        if (!fmt.equals("e4m3")) {
            throw fields.problem("fmt", "'" + fmt + "' is not supported (only e4m3)");
        }
        return new Fp8Checkpoint("fp8", false, inputs, 0, names(fields, config, "ignored_layers"), "ignored_layers",
                false);
    }

    private static Fp8Checkpoint fbgemm(ConfigFields fields, JsonNode config) {
        float bound = (float) fields.positiveNumber("activation_scale_ub", 1200.0);
        if (!Float.isFinite(bound) || bound == 0) {
            throw fields.problem("activation_scale_ub", "must be a positive number within fp32's range, got "
                    + config.get("activation_scale_ub"));
        }
        return new Fp8Checkpoint("fbgemm_fp8", true, InputQuantization.Mode.DYNAMIC_PER_TOKEN, bound,
                names(fields, config, "modules_to_not_convert"), "modules_to_not_convert", false);
    }

    /** A list of strings (absent or null: empty); "re:" entries must be valid patterns. */
    private static List<String> names(ConfigFields fields, JsonNode config, String field) {
        JsonNode node = config.get(field);
        List<String> names = new ArrayList<>();
        if (node == null || node.isNull()) {
            return names;
        }
        if (!node.isArray()) {
            throw fields.problem(field, "must be a list of module names, got " + ConfigFields.describe(node));
        }
        for (Iterator<JsonNode> it = node.elements(); it.hasNext(); ) {
            JsonNode entry = it.next();
            if (!entry.isTextual() || entry.textValue().isEmpty()) {
                throw fields.problem(field, "must be a list of module names, got an entry " + ConfigFields.describe(entry));
            }
            if (entry.textValue().startsWith("re:")) {
                try {
                    Pattern.compile(entry.textValue().substring(3));
                } catch (PatternSyntaxException e) {
                    throw fields.problem(field, "entry '" + entry.textValue() + "' is not a valid pattern");
                }
            }
            names.add(entry.textValue());
        }
        return names;
    }
}
