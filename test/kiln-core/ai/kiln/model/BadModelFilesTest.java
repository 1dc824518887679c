package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every kind of bad model file gets a {@link ModelLoadException} whose message names the file and,
 * where there is one, the tensor; the JVM never crashes and no native code reads outside the
 * mapped file.
 */
class BadModelFilesTest {

    @TempDir
    Path dir;

    /** A safetensors file from a header JSON and a data section. */
    private Path safetensors(String name, String headerJson, byte[] data) throws IOException {
        byte[] header = headerJson.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buffer = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putLong(header.length).put(header).put(data);
        Path file = dir.resolve(name);
        Files.write(file, buffer.array());
        return file;
    }

    private static void assertLoadError(Executable load, String... fragments) {
        ModelLoadException error = assertThrows(ModelLoadException.class, load);
        for (String fragment : fragments) {
            assertTrue(error.getMessage().contains(fragment),
                    "message '" + error.getMessage() + "' should contain '" + fragment + "'");
        }
    }

    @Test
    void fileShorterThanTheLengthPrefix() throws IOException {
        Path file = dir.resolve("short.safetensors");
        Files.write(file, new byte[] {1, 2, 3});
        assertLoadError(() -> SafetensorsFile.open(file), "short.safetensors", "truncated");
    }

    @Test
    void emptyFile() throws IOException {
        Path file = dir.resolve("empty.safetensors");
        Files.write(file, new byte[0]);
        assertLoadError(() -> SafetensorsFile.open(file), "empty.safetensors", "empty");
    }

    @Test
    void headerLengthPastTheEnd() throws IOException {
        Path file = dir.resolve("long-header.safetensors");
        ByteBuffer buffer = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putLong(1_000_000).putLong(0);
        Files.write(file, buffer.array());
        assertLoadError(() -> SafetensorsFile.open(file), "long-header.safetensors", "header length 1000000");
    }

    @Test
    void negativeHeaderLength() throws IOException {
        Path file = dir.resolve("negative.safetensors");
        ByteBuffer buffer = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putLong(-8).putLong(0);
        Files.write(file, buffer.array());
        assertLoadError(() -> SafetensorsFile.open(file), "negative.safetensors", "header length");
    }

    @Test
    void headerIsNotJson() throws IOException {
        Path file = safetensors("garbage.safetensors", "{not json", new byte[0]);
        assertLoadError(() -> SafetensorsFile.open(file), "garbage.safetensors", "not valid JSON");
    }

    @Test
    void offsetsOutsideTheFile() throws IOException {
        Path file = safetensors("truncated.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", new byte[8]);
        assertLoadError(() -> SafetensorsFile.open(file), "truncated.safetensors", "'w'", "outside the data section");
    }

    @Test
    void truncatedRealFile() throws IOException {
        byte[] whole = Files.readAllBytes(Fixtures.ROOT.resolve("llama3-gqa/model.safetensors"));
        Path file = dir.resolve("model.safetensors");
        Files.write(file, java.util.Arrays.copyOf(whole, whole.length - 1000));
        assertLoadError(() -> SafetensorsFile.open(file), "model.safetensors", "outside the data section");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path file = safetensors("overlap.safetensors",
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                        + " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", new byte[24]);
        assertLoadError(() -> SafetensorsFile.open(file), "overlap.safetensors", "'a'", "'b'", "overlap");
    }

    @Test
    void byteCountDoesNotMatchDtypeAndShape() throws IOException {
        Path file = safetensors("mismatch.safetensors",
                "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}}", new byte[24]);
        assertLoadError(() -> SafetensorsFile.open(file), "mismatch.safetensors", "'w'", "needs 12");
    }

    @Test
    void unsupportedDtype() throws IOException {
        Path file = safetensors("e5m2.safetensors",
                "{\"w\": {\"dtype\": \"F8_E5M2\", \"shape\": [4], \"data_offsets\": [0, 4]}}", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(file), "e5m2.safetensors", "'w'", "unsupported dtype 'F8_E5M2'");
    }

    @Test
    void badShape() throws IOException {
        Path file = safetensors("shape.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(file), "shape.safetensors", "'w'", "bad shape");
    }

    /** Copies a fixture model directory so a test can damage it. */
    private Path copyOfFixture(String name) throws IOException {
        return DamagedModels.copyOfFixture(name, dir.resolve(name));
    }

    private static void load(Path modelDir) {
        DamagedModels.load(modelDir);
    }

    /** Rewrites model.safetensors with one tensor's header entry renamed (its bytes stay). */
    private static void renameTensor(Path file, String from, String to) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        String renamed = header.replace("\"" + from + "\"", "\"" + to + "\"");
        assertTrue(renamed.length() == header.length() && !renamed.equals(header), "rename keeps the header length");
        System.arraycopy(renamed.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, (int) headerLength);
        Files.write(file, bytes);
    }

    @Test
    void aFixtureLoads() throws IOException {
        load(copyOfFixture("llama3-gqa"));
    }

    @Test
    void missingTensor() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        renameTensor(model.resolve("model.safetensors"), "model.layers.1.mlp.up_proj.weight",
                "model.layers.1.mlp.xx_proj.weight");
        assertLoadError(() -> load(model), "missing tensor 'model.layers.1.mlp.up_proj.weight'");
    }

    @Test
    void tensorShapeDoesNotMatchTheConfig() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Path config = model.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"intermediate_size\": 128", "\"intermediate_size\": 96"));
        assertLoadError(() -> load(model), "model.safetensors", "'model.layers.0.mlp.gate_proj.weight'",
                "[128, 64]", "[96, 64]");
    }

    @Test
    void nanWeight() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Path file = model.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        // The first tensor in the data section; find which one it is from the header.
        try (SafetensorsFile parsed = SafetensorsFile.open(file)) {
            SafetensorsFile.Entry first = parsed.entries().values().stream()
                    .min(java.util.Comparator.comparingLong(SafetensorsFile.Entry::begin)).orElseThrow();
            int at = (int) (8 + headerLength + first.begin() + 4 * 3);
            ByteBuffer.wrap(bytes, at, 4).order(ByteOrder.LITTLE_ENDIAN).putFloat(Float.NaN);
            Files.write(file, bytes);
            assertLoadError(() -> load(model), "'" + first.name() + "'", "NaN or infinite", "element 3");
        }
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Path config = model.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("LlamaForCausalLM", "GPTNeoXForCausalLM"));
        assertLoadError(() -> ModelConfig.load(model), "config.json", "'GPTNeoXForCausalLM'",
                "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM");
    }

    @Test
    void missingAndMalformedConfig() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Path config = model.resolve("config.json");
        Files.writeString(config, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": \"wide\"}");
        assertLoadError(() -> ModelConfig.load(model), "config.json", "hidden_size must be an integer");
        Files.writeString(config, "[1, 2");
        assertLoadError(() -> ModelConfig.load(model), "config.json");
        Files.delete(config);
        assertLoadError(() -> ModelConfig.load(model), "missing config.json");
    }

    @Test
    void unsupportedRopeScaling() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Path config = model.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"rope_scaling\": null",
                "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}"));
        assertLoadError(() -> ModelConfig.load(model), "config.json", "unsupported rope scaling type 'yarn'");
    }

    @Test
    void noWeightsFile() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Files.delete(model.resolve("model.safetensors"));
        assertLoadError(() -> WeightFiles.open(model), "no model.safetensors or model.safetensors.index.json");
    }

    @Test
    void shardIndexNamingAMissingFileOrEscapingTheDirectory() throws IOException {
        Path model = copyOfFixture("qwen3-qknorm-sharded");
        Path index = model.resolve("model.safetensors.index.json");
        String original = Files.readString(index);
        Files.delete(model.resolve("model-00002-of-00003.safetensors"));
        assertLoadError(() -> WeightFiles.open(model), "missing weights file", "model-00002-of-00003.safetensors");
        Files.writeString(index, original.replace("model-00001-of-00003.safetensors", "../../etc/passwd"));
        assertLoadError(() -> WeightFiles.open(model), "bad file name '../../etc/passwd'");
    }

    /** Rewrites a safetensors file's header text (the data section stays as it is). */
    private static void rewriteHeader(Path file, UnaryOperator<String> edit) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        int headerLength = (int) ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        byte[] header = edit.apply(new String(bytes, 8, headerLength, StandardCharsets.UTF_8))
                .getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + header.length + bytes.length - 8 - headerLength)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(header.length).put(header).put(bytes, 8 + headerLength, bytes.length - 8 - headerLength);
        Files.write(file, out.array());
    }

    /** Appends one tensor (its header entry and its bytes) to a safetensors file. */
    private static void appendTensor(Path file, String name, String dtype, long[] shape, byte[] data)
            throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        int headerLength = (int) ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        long dataLength = bytes.length - 8L - headerLength;
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = (ObjectNode) json.readTree(new String(bytes, 8, headerLength, StandardCharsets.UTF_8));
        ObjectNode entry = header.putObject(name);
        entry.put("dtype", dtype);
        ArrayNode shapeNode = entry.putArray("shape");
        for (long dim : shape) {
            shapeNode.add(dim);
        }
        entry.putArray("data_offsets").add(dataLength).add(dataLength + data.length);
        byte[] newHeader = json.writeValueAsBytes(header);
        ByteBuffer out = ByteBuffer.allocate(8 + newHeader.length + (int) dataLength + data.length)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(newHeader.length).put(newHeader).put(bytes, 8 + headerLength, (int) dataLength).put(data);
        Files.write(file, out.array());
    }

    private static void setConfigField(Path model, String field, String value) throws IOException {
        Path config = model.resolve("config.json");
        ObjectNode root = (ObjectNode) new ObjectMapper().readTree(config.toFile());
        root.putRawValue(field, new com.fasterxml.jackson.databind.util.RawValue(value));
        Files.writeString(config, root.toString());
    }

    @Test
    void weightsOfMoreLayersThanTheConfigSays() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        setConfigField(model, "num_hidden_layers", "1");
        assertLoadError(() -> load(model), "model.safetensors", "unexpected tensor",
                "'model.layers.1.input_layernorm.weight'", "num_hidden_layers 1");
    }

    @Test
    void aTensorTheConfigDoesNotUse() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        appendTensor(model.resolve("model.safetensors"), "model.layers.0.self_attn.q_proj.bias", "F32",
                new long[] {64}, new byte[64 * 4]);
        assertLoadError(() -> load(model), "unexpected tensor 'model.layers.0.self_attn.q_proj.bias'");
    }

    @Test
    void missingAndUnexpectedAreNamedTogether() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        renameTensor(model.resolve("model.safetensors"), "model.norm.weight", "model.norm.weigh_");
        assertLoadError(() -> load(model), "missing tensor 'model.norm.weight'", "unexpected tensor 'model.norm.weigh_'");
    }

    @Test
    void rotaryInverseFrequenciesOfOlderCheckpointsAreIgnored() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        appendTensor(model.resolve("model.safetensors"), "model.layers.1.self_attn.rotary_emb.inv_freq", "F32",
                new long[] {8}, new byte[8 * 4]);
        load(model);
    }

    @Test
    void aTensorNamedTwiceInOneHeader() throws IOException {
        Path file = safetensors("twice.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                        + " \"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}", new byte[32]);
        assertLoadError(() -> SafetensorsFile.open(file), "twice.safetensors", "tensor 'w' twice");
    }

    @Test
    void aKeyNamedTwiceInsideAnEntry() throws IOException {
        Path file = safetensors("twice-dtype.safetensors",
                "{\"w\": {\"dtype\": \"F16\", \"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
                new byte[16]);
        assertLoadError(() -> SafetensorsFile.open(file), "twice-dtype.safetensors", "Duplicate field 'dtype'");
    }

    @Test
    void aRealHeaderWithATensorRepeated() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        Path file = model.resolve("model.safetensors");
        String[] entry = new String[1];
        rewriteHeader(file, header -> {
            int start = header.indexOf("\"model.norm.weight\"");
            int end = header.indexOf('}', start) + 1;
            entry[0] = header.substring(start, end);
            return "{" + entry[0] + ", " + header.substring(1);
        });
        assertTrue(entry[0].contains("data_offsets"), entry[0]);
        assertLoadError(() -> load(model), "model.safetensors", "tensor 'model.norm.weight' twice");
    }

    @Test
    void aTensorInTwoShards() throws IOException {
        Path model = copyOfFixture("qwen3-qknorm-sharded");
        byte[] embedding;
        long[] shape;
        try (SafetensorsFile first = SafetensorsFile.open(model.resolve("model-00001-of-00003.safetensors"))) {
            SafetensorsFile.Entry entry = first.entries().get("model.embed_tokens.weight");
            shape = entry.shape();
            embedding = new byte[(int) (entry.end() - entry.begin())];
        }
        appendTensor(model.resolve("model-00002-of-00003.safetensors"), "model.embed_tokens.weight", "F32", shape,
                embedding);
        assertLoadError(() -> WeightFiles.open(model), "tensor 'model.embed_tokens.weight' is in both",
                "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors");
    }

    @Test
    void aShardTensorTheIndexDoesNotList() throws IOException {
        Path model = copyOfFixture("qwen3-qknorm-sharded");
        appendTensor(model.resolve("model-00003-of-00003.safetensors"), "model.layers.9.mlp.up_proj.weight", "F32",
                new long[] {2}, new byte[8]);
        assertLoadError(() -> WeightFiles.open(model), "model-00003-of-00003.safetensors",
                "'model.layers.9.mlp.up_proj.weight' is not listed in model.safetensors.index.json");
    }

    @Test
    void garbageAfterTheHeaderObject() throws IOException {
        Path small = safetensors("trailing.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}  xyz", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(small), "trailing.safetensors", "unexpected data after the header");
        Path second = safetensors("second-object.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}{}", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(second), "second-object.safetensors", "unexpected data after the header");
        Path nul = safetensors("nul-padded.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}\u0000\u0000", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(nul), "nul-padded.safetensors", "unexpected data after the header");

        Path model = copyOfFixture("llama3-gqa");
        rewriteHeader(model.resolve("model.safetensors"), header -> header + "garbage");
        assertLoadError(() -> load(model), "model.safetensors", "unexpected data after the header");
    }

    @Test
    void headerMustStartWithABrace() throws IOException {
        Path file = safetensors("leading-space.safetensors",
                " {\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(file), "leading-space.safetensors", "does not start with '{'");
    }

    @Test
    void headerPaddedWithSpacesLoads() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        rewriteHeader(model.resolve("model.safetensors"), header -> header + "       ");
        load(model);
    }

    /** Sizes derived from the config and the options are computed without wrapping. */
    @Test
    void workspaceThatOverflowsALong() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        setConfigField(model, "vocab_size", "2147483647");
        EngineOptions options = EngineOptions.defaults().toBuilder().device("cpu").maxRunningSeqs(Integer.MAX_VALUE)
                .build();
        EngineException error = assertThrows(EngineException.class, () -> Engine.create(model, options).close());
        assertTrue(error.getMessage().contains("step workspace overflows")
                && error.getMessage().contains("vocab_size 2147483647")
                && error.getMessage().contains(Integer.MAX_VALUE + " sequences"), error.getMessage());
    }

    @Test
    void cpuBudgetThatOverflowsALong() throws IOException {
        Path model = copyOfFixture("llama3-gqa");
        EngineOptions options = EngineOptions.defaults().toBuilder().device("cpu").kvCacheBytes(Long.MAX_VALUE - 1000)
                .build();
        EngineException error = assertThrows(EngineException.class, () -> Engine.create(model, options).close());
        assertTrue(error.getMessage().contains("CPU memory budget overflows")
                && error.getMessage().contains("KV cache " + (Long.MAX_VALUE - 1000)), error.getMessage());
    }
}

