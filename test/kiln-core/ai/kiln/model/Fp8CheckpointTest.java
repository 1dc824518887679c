package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.InputQuantization;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * quantization_config read from each FP8 fixture as the scheme it describes, and every value Kiln
 * does not run (or a checkpoint that disagrees with its config) refused with a message naming the
 * field or the tensor.
 */
class Fp8CheckpointTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private static JsonNode config(String fixture) throws IOException {
        return JSON.readTree(Fixtures.ROOT.resolve(fixture).resolve("config.json").toFile());
    }

    @Test
    void eachFormatReadsAsItsScheme() throws IOException {
        Fp8Checkpoint channel = ModelConfig.fromJson(config("llama3-gqa-fp8-ct-channel-dynamic"), null).fp8();
        assertEquals(new Fp8Checkpoint("compressed-tensors", true, InputQuantization.Mode.DYNAMIC_PER_TOKEN, 0,
                List.of("lm_head"), "ignore", false), channel);
        assertTrue(!channel.quantizes("lm_head") && channel.quantizes("model.layers.1.mlp.down_proj"));
        Fp8Checkpoint weightOnly = ModelConfig.fromJson(config("llama3-gqa-fp8-ct-tensor-w8a16"), null).fp8();
        assertEquals(InputQuantization.Mode.NONE, weightOnly.inputs());
        assertTrue(!weightOnly.perChannel());
        Fp8Checkpoint autoFp8 = ModelConfig.fromJson(config("llama3-gqa-fp8-static"), null).fp8();
        assertEquals(new Fp8Checkpoint("fp8", false, InputQuantization.Mode.STATIC_PER_TENSOR, 0, List.of("lm_head"),
                "ignored_layers", false), autoFp8);
        Fp8Checkpoint fbgemm = ModelConfig.fromJson(config("llama3-gqa-fp8-fbgemm"), null).fp8();
        assertEquals("fbgemm_fp8", fbgemm.format());
        assertTrue(fbgemm.perChannel() && fbgemm.inputScaleUpperBound() > 0 && fbgemm.quantizes("lm_head"));
        assertEquals(null, ModelConfig.fromJson(config("llama3-gqa"), null).fp8());
        Fp8Checkpoint pattern = new Fp8Checkpoint("compressed-tensors", true, InputQuantization.Mode.NONE, 0,
                List.of("re:.*down_proj$"), "ignore", false);
        assertTrue(!pattern.quantizes("model.layers.0.mlp.down_proj") && pattern.quantizes("model.layers.0.mlp.up_proj"));
    }

    private static void assertRefused(String fixture, Consumer<ObjectNode> edit, String... fragments) throws IOException {
        ObjectNode root = (ObjectNode) config(fixture);
        edit.accept((ObjectNode) root.get("quantization_config"));
        ModelLoadException error = assertThrows(ModelLoadException.class, () -> ModelConfig.fromJson(root, null));
        for (String fragment : fragments) {
            assertTrue(error.getMessage().contains(fragment), error.getMessage() + " lacks '" + fragment + "'");
        }
    }

    private static ObjectNode group(ObjectNode quantization, String part) {
        return (ObjectNode) quantization.get("config_groups").get("group_0").get(part);
    }

    @Test
    void unsupportedValuesAreRefusedNamingTheField() throws IOException {
        String ct = "llama3-gqa-fp8-ct-channel-dynamic";
        assertRefused(ct, q -> q.put("quant_method", "gptq"), "quantization_config.quant_method 'gptq' is not supported");
        assertRefused(ct, q -> q.remove("quant_method"), "quantization_config.quant_method is missing");
        assertRefused(ct, q -> q.put("format", "pack-quantized"), "quantization_config.format 'pack-quantized'");
        assertRefused(ct, q -> q.putObject("kv_cache_scheme").put("num_bits", 8).put("type", "float")
                .put("strategy", "channel"), "quantization_config.kv_cache_scheme.strategy 'channel' with dynamic false"
                + " is not supported");
        assertRefused(ct, q -> q.putObject("kv_cache_scheme").put("num_bits", 4).put("type", "float"),
                "quantization_config.kv_cache_scheme.num_bits must be 8");
        assertRefused(ct, q -> group(q, "weights").put("strategy", "group"),
                "quantization_config.config_groups.group_0.weights.strategy 'group' is not supported");
        assertRefused(ct, q -> group(q, "weights").put("num_bits", 4),
                "quantization_config.config_groups.group_0.weights.num_bits must be 8");
        assertRefused(ct, q -> group(q, "weights").put("type", "int"),
                "quantization_config.config_groups.group_0.weights.type 'int'");
        assertRefused(ct, q -> group(q, "input_activations").put("strategy", "tensor"),
                "quantization_config.config_groups.group_0.input_activations.strategy 'tensor' with dynamic true");
        assertRefused(ct, q -> q.put("ignore", "lm_head"), "quantization_config.ignore must be a list");
        String autoFp8 = "llama3-gqa-fp8-static";
        assertRefused(autoFp8, q -> q.putArray("weight_block_size").add(128).add(128),
                "quantization_config.weight_block_size is not supported");
        assertRefused(autoFp8, q -> q.put("activation_scheme", "sometimes"),
                "quantization_config.activation_scheme 'sometimes'");
        assertRefused("llama3-gqa-fp8-fbgemm", q -> q.put("activation_scale_ub", -1),
                "quantization_config.activation_scale_ub must be a number > 0");
        assertRefused("llama3-gqa-fp8-fbgemm", q -> q.put("activation_scale_ub", 1e300),
                "quantization_config.activation_scale_ub must be a positive number within fp32's range");
    }

    private int copies;

    private Path copyOfFixture(String name) throws IOException {
        return DamagedModels.copyOfFixture(name, dir.resolve(name + "-" + copies++));
    }

    private static void load(Path modelDir) {
        DamagedModels.load(modelDir);
    }

    private static void assertLoadRefused(Path model, String... fragments) {
        ModelLoadException error = assertThrows(ModelLoadException.class, () -> load(model));
        for (String fragment : fragments) {
            assertTrue(error.getMessage().contains(fragment), error.getMessage() + " lacks '" + fragment + "'");
        }
    }

    /** Rewrites model.safetensors with one tensor's header entry renamed to a name of the same length. */
    private static void renameTensor(Path file, String from, String to) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        int headerLength = (int) ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, headerLength, StandardCharsets.UTF_8);
        String renamed = header.replace("\"" + from + "\"", "\"" + to + "\"");
        assertTrue(renamed.length() == header.length() && !renamed.equals(header), "rename keeps the header length");
        System.arraycopy(renamed.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, headerLength);
        Files.write(file, bytes);
    }

    private static void editQuantizationConfig(Path model, Consumer<ObjectNode> edit) throws IOException {
        Path file = model.resolve("config.json");
        ObjectNode root = (ObjectNode) JSON.readTree(file.toFile());
        edit.accept((ObjectNode) root.get("quantization_config"));
        Files.writeString(file, root.toString());
    }

    @Test
    void checkpointsThatDisagreeWithTheirConfigAreRefusedNamingTheTensor() throws IOException {
        Path missingScale = copyOfFixture("llama3-gqa-fp8-ct-channel-dynamic");
        renameTensor(missingScale.resolve("model.safetensors"), "model.layers.0.self_attn.k_proj.weight_scale",
                "model.layers.0.self_attn.k_proj.weight_scalX");
        assertLoadRefused(missingScale, "missing tensor 'model.layers.0.self_attn.k_proj.weight_scale'");

        Path missingInputScale = copyOfFixture("llama3-gqa-fp8-static");
        renameTensor(missingInputScale.resolve("model.safetensors"), "model.layers.1.mlp.down_proj.input_scale",
                "model.layers.1.mlp.down_proj.input_scalX");
        assertLoadRefused(missingInputScale, "missing tensor 'model.layers.1.mlp.down_proj.input_scale'");

        // lm_head is stored in bf16: a config that does not ignore it asks for its scale.
        Path headNotIgnored = copyOfFixture("llama3-gqa-fp8-ct-tensor-w8a16");
        editQuantizationConfig(headNotIgnored, q -> q.putArray("ignore"));
        assertLoadRefused(headNotIgnored, "missing tensor 'lm_head.weight_scale'");

        // Ignoring a module stored in FP8 names the ignore field.
        Path ignoredButFp8 = copyOfFixture("llama3-gqa-fp8-static");
        editQuantizationConfig(ignoredButFp8, q -> q.putArray("ignored_layers").add("lm_head").add("o_proj"));
        assertLoadRefused(ignoredButFp8, "unexpected tensor 'model.layers.0.self_attn.o_proj.input_scale'");

        // One of a fused group's shards kept in float while the others are FP8.
        Path splitFusion = copyOfFixture("llama3-gqa-fp8-fbgemm");
        editQuantizationConfig(splitFusion, q -> q.putArray("modules_to_not_convert").add("k_proj"));
        assertLoadRefused(splitFusion, "unexpected tensor 'model.layers.0.self_attn.k_proj.weight_scale'");
    }

    /**
     * A checkpoint with a kv_cache_scheme (llm-compressor's per-tensor K and V scales beside each
     * layer's attention) loads, the scales accepted and not read: the same greedy tokens as the
     * checkpoint without them, with the cache in fp32 or FP8; without the scheme the same tensors
     * are unexpected.
     */
    @Test
    void aKvCacheSchemesScalesAreAcceptedAndNotRead() throws Exception {
        Path plain = Fixtures.ROOT.resolve("llama3-gqa-fp8-ct-channel-dynamic");
        Path withScales = copyOfFixture("llama3-gqa-fp8-ct-channel-dynamic");
        ModelConfig config = ModelConfig.load(plain);
        java.util.Map<String, Float> scales = new java.util.LinkedHashMap<>();
        for (int layer = 0; layer < config.numLayers(); layer++) {
            scales.put("model.layers." + layer + ".self_attn.k_scale", 0.03f);
            scales.put("model.layers." + layer + ".self_attn.v_scale", 0.02f);
        }
        addScalarTensors(withScales.resolve("model.safetensors"), scales);
        assertLoadRefused(withScales, "unexpected tensor 'model.layers.0.self_attn.k_scale'");
        editQuantizationConfig(withScales, q -> q.putObject("kv_cache_scheme").put("num_bits", 8).put("type", "float")
                .put("strategy", "tensor").put("dynamic", false).put("symmetric", true));
        assertTrue(ModelConfig.load(withScales).fp8().kvCacheScales());

        ai.kiln.api.SamplingParams greedy = ai.kiln.api.SamplingParams.builder().temperature(0).maxTokens(12)
                .ignoreEos(true).build();
        int[] prompt = Fixtures.named("llama3-gqa").records().get(0).promptTokenIds();
        ai.kiln.api.EngineOptions.Builder options = ai.kiln.api.EngineOptions.builder().threads(2)
                .kvCacheBytes(8L << 20).maxModelLen(256);
        for (ai.kiln.api.KvCacheDType kv : ai.kiln.api.KvCacheDType.values()) {
            try (ai.kiln.api.Engine expected = ai.kiln.engine.LocalEngine.create(plain, options.kvCacheDtype(kv).build());
                    ai.kiln.api.Engine got = ai.kiln.engine.LocalEngine.create(withScales,
                            options.kvCacheDtype(kv).build())) {
                assertArrayEquals(expected.generate(ai.kiln.api.GenerateRequest.ofTokens(prompt, greedy)).tokenIds(),
                        got.generate(ai.kiln.api.GenerateRequest.ofTokens(prompt, greedy)).tokenIds(), kv.toString());
            }
        }
    }

    /** Appends F32 scalars to a safetensors file (header rewritten, data after the existing data). */
    private static void addScalarTensors(Path file, java.util.Map<String, Float> tensors) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int headerLength = (int) in.getLong(0);
        ObjectNode header = (ObjectNode) JSON.readTree(new String(bytes, 8, headerLength, StandardCharsets.UTF_8));
        long end = bytes.length - 8L - headerLength;
        java.io.ByteArrayOutputStream data = new java.io.ByteArrayOutputStream();
        data.write(bytes, 8 + headerLength, (int) end);
        for (java.util.Map.Entry<String, Float> tensor : tensors.entrySet()) {
            ObjectNode entry = header.putObject(tensor.getKey());
            entry.put("dtype", "F32");
            entry.putArray("shape");
            entry.putArray("data_offsets").add(end).add(end + 4);
            data.write(java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .putFloat(tensor.getValue()).array());
            end += 4;
        }
        byte[] newHeader = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (newHeader.length + 7) / 8 * 8;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
        out.write(newHeader);
        for (int i = newHeader.length; i < padded; i++) {
            out.write(' ');
        }
        out.write(data.toByteArray());
        Files.write(file, out.toByteArray());
    }

    @Test
    void int8OnAnFp8CheckpointIsRefused() {
        Path model = Fixtures.ROOT.resolve("llama3-gqa-fp8-fbgemm");
        ModelConfig config = ModelConfig.load(model);
        try (CpuBackend backend = new CpuBackend(1, 1L << 28); WeightFiles files = WeightFiles.open(model)) {
            ModelLoadException error = assertThrows(ModelLoadException.class,
                    () -> ModelWeights.load(config, files, backend, WeightQuantization.INT8));
            assertTrue(error.getMessage().contains("FP8 already (quantization_config.quant_method fbgemm_fp8)"),
                    error.getMessage());
        }
    }
}
