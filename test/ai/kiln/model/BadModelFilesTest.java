package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.testing.Fixtures;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
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
        Path file = safetensors("fp8.safetensors",
                "{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(file), "fp8.safetensors", "'w'", "unsupported dtype 'F8_E4M3'");
    }

    @Test
    void badShape() throws IOException {
        Path file = safetensors("shape.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", new byte[4]);
        assertLoadError(() -> SafetensorsFile.open(file), "shape.safetensors", "'w'", "bad shape");
    }

    /** Copies a fixture model directory so a test can damage it. */
    private Path copyOfFixture(String name) throws IOException {
        Path target = dir.resolve(name);
        Files.createDirectories(target);
        try (Stream<Path> files = Files.list(Fixtures.ROOT.resolve(name))) {
            for (Path file : files.toList()) {
                Files.copy(file, target.resolve(file.getFileName()));
            }
        }
        return target;
    }

    private static void load(Path modelDir) {
        ModelConfig config = ModelConfig.load(modelDir);
        try (CpuBackend backend = new CpuBackend(1, 1L << 28);
                WeightFiles files = WeightFiles.open(modelDir);
                ModelWeights weights = ModelWeights.load(config, files, backend)) {
            assertTrue(weights.bytes() > 0);
        }
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
        assertLoadError(() -> ModelConfig.load(model), "config.json", "'hidden_size' must be an integer");
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
}
