package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.Quantization;
import ai.kiln.api.SamplingParams;
import ai.kiln.engine.LocalEngine;
import ai.kiln.hub.ModelManifest;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Compiled artifacts (`kiln compile`, {@link ArtifactCompiler}, {@link ModelArtifact}) on the CPU:
 * an artifact gives the same greedy tokens as its source directory (and Hugging Face's), for float,
 * FP8 and int8 weights, tied and untied LM heads, biases, q/k norms, sharded sources and FP8
 * checkpoints; its files are valid safetensors (every byte of the data section indexed) with each
 * tensor's data 4096-byte aligned; and each kind of bad artifact is refused naming what differs.
 */
class ModelArtifactTest {

    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    static EngineOptions options(Quantization quantization) {
        return EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(256).quantization(quantization)
                .build();
    }

    Path compile(Fixtures.Model fixture, ArtifactTarget target, WeightQuantization quantization, long maxFileBytes)
            throws Exception {
        Path out = temp.resolve(fixture.name() + "-" + target + "-" + quantization);
        new ArtifactCompiler(maxFileBytes, new PrintWriter(new StringWriter()))
                .compile(fixture.dir(), fixture.name(), null, target, quantization, out);
        return out;
    }

    static int[] greedy(Engine engine, int[] prompt, int tokens) {
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(tokens).ignoreEos(true).build();
        return engine.generate(GenerateRequest.ofTokens(prompt, params)).tokenIds();
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"llama3-gqa, NONE", "qwen2-bias-tied, NONE", "qwen3-qknorm-sharded, NONE", "llama3-gqa-bf16, NONE",
        "llama3-gqa-fp8-static, NONE", "llama3-gqa-fp8-ct-channel-dynamic, NONE", "llama3-gqa, FP8",
        "llama3-gqa, INT8", "qwen2-bias-tied, INT8"})
    void anArtifactGivesItsSourcesGreedyTokens(String name, WeightQuantization quantization) throws Exception {
        Fixtures.Model fixture = name.contains("fp8") ? Fixtures.load(Fixtures.ROOT.resolve(name), "reference-fp8.json")
                : Fixtures.named(name);
        // Small files, so that the weights span several of them.
        Path artifact = compile(fixture, ArtifactTarget.CPU, quantization, 64L << 10);
        Quantization asked = switch (quantization) {
            case NONE -> Quantization.NONE;
            case FP8 -> Quantization.FP8;
            case INT8 -> Quantization.INT8;
        };
        try (Engine compiled = LocalEngine.create(artifact, options(Quantization.NONE));
                Engine source = LocalEngine.create(fixture.dir(), options(asked))) {
            for (Fixtures.Record record : fixture.records()) {
                int tokens = record.greedyTokenIds().length;
                int[] fromArtifact = greedy(compiled, record.promptTokenIds(), tokens);
                assertArrayEquals(greedy(source, record.promptTokenIds(), tokens), fromArtifact,
                        name + " '" + record.prompt() + "'");
                if (quantization == WeightQuantization.NONE && fixture.name().equals("llama3-gqa")) {
                    assertArrayEquals(record.greedyTokenIds(), fromArtifact, "Hugging Face's greedy tokens");
                }
            }
        }
        assertTrue(Files.isRegularFile(artifact.resolve(ModelArtifact.VERIFIED)), "the stamp of a verified load");
        assertTrue(Files.isRegularFile(artifact.resolve("tokenizer.json")) || !Files.exists(fixture.dir()
                .resolve("tokenizer.json")), "the tokenizer is copied");
    }

    @Test
    void theFilesAreValidSafetensorsWithEveryTensorAlignedAndTheManifestListsTheSource() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path artifact = compile(fixture, ArtifactTarget.CUDA_SM90, WeightQuantization.FP8, 96L << 10);
        JsonNode manifest = JSON.readTree(artifact.resolve(ModelArtifact.MANIFEST).toFile());
        assertEquals("kiln-artifact", manifest.get("format").asText());
        assertEquals(1, manifest.get("version").asInt());
        assertEquals("cuda-sm90", manifest.get("target").asText());
        assertEquals("fp8", manifest.get("quantization").asText());
        assertEquals("llama3-gqa", manifest.at("/source/model").asText());
        assertEquals(ModelManifest.sha256Of(fixture.dir().resolve("model.safetensors")),
                sourceFile(manifest, "model.safetensors").get("sha256").asText());
        assertEquals("DYNAMIC_PER_TOKEN", manifest.at("/input_quantization/layers.0.qkv/mode").asText());

        List<Path> weightFiles;
        try (Stream<Path> files = Files.list(artifact)) {
            weightFiles = files.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
        }
        assertTrue(weightFiles.size() > 1, "several files: " + weightFiles);
        int checked = 0;
        for (Path file : weightFiles) {
            byte[] bytes = Files.readAllBytes(file);
            long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            long dataStart = 8 + headerLength;
            assertEquals(0, dataStart % ArtifactCompiler.ALIGNMENT, file + ": data starts aligned");
            JsonNode header = JSON.readTree(new String(bytes, 8, (int) headerLength, java.nio.charset.StandardCharsets.UTF_8).trim());
            List<long[]> spans = new ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> entry = it.next();
                if (entry.getKey().equals("__metadata__")) {
                    continue;
                }
                long begin = entry.getValue().at("/data_offsets/0").asLong();
                long end = entry.getValue().at("/data_offsets/1").asLong();
                spans.add(new long[] {begin, end});
                if (!entry.getKey().startsWith(ArtifactCompiler.PADDING_PREFIX)) {
                    assertEquals(0, (dataStart + begin) % ArtifactCompiler.ALIGNMENT, entry.getKey() + " aligned");
                    checked++;
                }
                if (entry.getKey().endsWith("qkv.weight")) {
                    assertEquals("F8_E4M3", entry.getValue().get("dtype").asText(), entry.getKey());
                }
                if (entry.getKey().equals("embedding")) {
                    assertEquals("BF16", entry.getValue().get("dtype").asText(), "cuda keeps float weights in bf16");
                }
            }
            spans.sort(Comparator.comparingLong(s -> s[0]));
            long expected = 0;
            for (long[] span : spans) {
                assertEquals(expected, span[0], file + ": the data section has no holes");
                expected = span[1];
            }
            assertEquals(bytes.length - dataStart, expected, file + ": every byte of the data section is indexed");
        }
        assertTrue(checked > 10, "tensors checked: " + checked);
        // The manifest a file server needs lists every file, this one included.
        ModelManifest served = ModelManifest.parse(Files.readAllBytes(artifact.resolve(ModelManifest.FILE_NAME)));
        assertTrue(served.files().stream().anyMatch(e -> e.path().equals(ModelArtifact.MANIFEST)));
        assertEquals(manifest.get("files").size() + 1, served.files().size());
    }

    static JsonNode sourceFile(JsonNode manifest, String path) {
        for (JsonNode file : manifest.at("/source/files")) {
            if (file.get("path").asText().equals(path)) {
                return file;
            }
        }
        throw new AssertionError("no source file " + path);
    }

    @Test
    void anArtifactForAnotherTargetOrQuantizationIsRefusedNamingBoth() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path cuda = compile(fixture, ArtifactTarget.CUDA_SM90, WeightQuantization.NONE, 1L << 30);
        ModelLoadException target = assertThrows(ModelLoadException.class,
                () -> LocalEngine.create(cuda, options(Quantization.NONE)).close());
        assertTrue(target.getMessage().contains("compiled for cuda-sm90") && target.getMessage().contains("--target cpu"),
                target.getMessage());

        Path cpu = compile(fixture, ArtifactTarget.CPU, WeightQuantization.NONE, 1L << 30);
        ModelLoadException quantization = assertThrows(ModelLoadException.class,
                () -> LocalEngine.create(cpu, options(Quantization.FP8)).close());
        assertTrue(quantization.getMessage().contains("compiled with quantization none"), quantization.getMessage());

        ModelLoadException sm80 = assertThrows(ModelLoadException.class,
                () -> compile(fixture, ArtifactTarget.CUDA_SM80, WeightQuantization.FP8, 1L << 30));
        assertTrue(sm80.getMessage().contains("does not run on cuda-sm80"), sm80.getMessage());
        assertThrows(ModelLoadException.class,
                () -> compile(fixture, ArtifactTarget.CUDA_SM90, WeightQuantization.INT8, 1L << 30));
        ModelLoadException twice = assertThrows(ModelLoadException.class,
                () -> new ArtifactCompiler(new PrintWriter(new StringWriter())).compile(cpu, "again", null,
                        ArtifactTarget.CPU, WeightQuantization.NONE, temp.resolve("again")));
        assertTrue(twice.getMessage().contains("compiled artifact already"), twice.getMessage());
        ModelLoadException exists = assertThrows(ModelLoadException.class,
                () -> new ArtifactCompiler(new PrintWriter(new StringWriter())).compile(fixture.dir(), "x", null,
                        ArtifactTarget.CPU, WeightQuantization.NONE, cpu));
        assertTrue(exists.getMessage().contains("exists"), exists.getMessage());
    }

    @Test
    void aManifestMustListEveryFileALoadReadsAndVouchesOnlyForTheHashesItHolds() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path artifact = compile(fixture, ArtifactTarget.CPU, WeightQuantization.NONE, 1L << 30);
        ModelArtifact.open(artifact); // verified: the stamp is written
        Path manifestPath = artifact.resolve(ModelArtifact.MANIFEST);
        ObjectNode manifest = (ObjectNode) JSON.readTree(manifestPath.toFile());

        // A changed manifest hash is not vouched for by the stamp of the old one.
        ObjectNode changed = manifest.deepCopy();
        ((ObjectNode) changed.get("files").get(0)).put("sha256", "0".repeat(64));
        Files.write(manifestPath, JSON.writeValueAsBytes(changed));
        ModelLoadException rehashed = assertThrows(ModelLoadException.class, () -> ModelArtifact.open(artifact));
        assertTrue(rehashed.getMessage().contains("sha256"), rehashed.getMessage());

        // A weights file the index names but the manifest omits would load unchecked: refused.
        ObjectNode omitted = manifest.deepCopy();
        com.fasterxml.jackson.databind.node.ArrayNode kept = omitted.putArray("files");
        for (JsonNode file : manifest.get("files")) {
            if (!file.get("path").asText().endsWith(".safetensors")) {
                kept.add(file);
            }
        }
        Files.write(manifestPath, JSON.writeValueAsBytes(omitted));
        ModelLoadException unlisted = assertThrows(ModelLoadException.class, () -> ModelArtifact.open(artifact));
        assertTrue(unlisted.getMessage().contains("does not list model-00001-of-00001.safetensors"),
                unlisted.getMessage());
    }

    @Test
    void anFp8CheckpointIsRefusedForATargetWithoutFp8AndAFailedCompileLeavesNothing() throws Exception {
        Fixtures.Model fp8 = Fixtures.load(Fixtures.ROOT.resolve("llama3-gqa-fp8-static"), "reference-fp8.json");
        ModelLoadException sm80 = assertThrows(ModelLoadException.class,
                () -> compile(fp8, ArtifactTarget.CUDA_SM80, WeightQuantization.NONE, 1L << 30));
        assertTrue(sm80.getMessage().contains("is an FP8 checkpoint") && sm80.getMessage().contains("cuda-sm80"),
                sm80.getMessage());
        // An FP8 checkpoint's artifact takes --quantization fp8, as the checkpoint itself does.
        Path artifact = compile(fp8, ArtifactTarget.CPU, WeightQuantization.NONE, 1L << 30);
        LocalEngine.create(artifact, options(Quantization.FP8)).close();

        // A source whose weights hold a NaN fails the compile's checks: no destination, no partial directory.
        Path broken = Files.createDirectories(temp.resolve("broken"));
        try (Stream<Path> files = Files.list(Fixtures.named("llama3-gqa").dir())) {
            for (Path file : files.toList()) {
                Files.copy(file, broken.resolve(file.getFileName()));
            }
        }
        Path weights = broken.resolve("model.safetensors");
        try (RandomAccessFile file = new RandomAccessFile(weights.toFile(), "rw")) {
            file.seek(file.length() - 4); // the last fp32 element of the last tensor: a NaN
            file.write(new byte[] {0, 0, (byte) 0xc0, 0x7f});
        }
        Path out = temp.resolve("broken-compiled");
        ModelLoadException nan = assertThrows(ModelLoadException.class,
                () -> new ArtifactCompiler(new PrintWriter(new StringWriter())).compile(broken, "broken", null,
                        ArtifactTarget.CPU, WeightQuantization.NONE, out));
        assertTrue(nan.getMessage().contains("NaN"), nan.getMessage());
        assertFalse(Files.exists(out));
        assertFalse(Files.exists(temp.resolve("broken-compiled.partial")));
    }

    @Test
    void aDamagedTruncatedMissingOrNewerArtifactIsRefusedNamingWhatDiffers() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path artifact = compile(fixture, ArtifactTarget.CPU, WeightQuantization.NONE, 1L << 30);
        ModelArtifact.open(artifact); // verified once: the stamp is written
        Path weights = artifact.resolve("model-00001-of-00001.safetensors");
        long size = Files.size(weights);

        // A flipped byte (the file's modification time moves, so the stamp no longer vouches for it).
        try (RandomAccessFile file = new RandomAccessFile(weights.toFile(), "rw")) {
            file.seek(size - 5);
            int b = file.read();
            file.seek(size - 5);
            file.write(b ^ 0x40);
        }
        Files.setLastModifiedTime(weights, java.nio.file.attribute.FileTime.fromMillis(
                Files.getLastModifiedTime(weights).toMillis() + 2000));
        ModelLoadException flipped = assertThrows(ModelLoadException.class, () -> ModelArtifact.open(artifact));
        assertTrue(flipped.getMessage().contains("sha256") && flipped.getMessage().contains(weights.getFileName().toString()),
                flipped.getMessage());

        try (RandomAccessFile file = new RandomAccessFile(weights.toFile(), "rw")) {
            file.setLength(size - 100);
        }
        ModelLoadException truncated = assertThrows(ModelLoadException.class, () -> ModelArtifact.open(artifact));
        assertTrue(truncated.getMessage().contains("has " + (size - 100) + " bytes"), truncated.getMessage());

        Files.delete(weights);
        ModelLoadException missing = assertThrows(ModelLoadException.class, () -> ModelArtifact.open(artifact));
        assertTrue(missing.getMessage().contains("missing " + weights.getFileName()), missing.getMessage());

        Path manifestPath = artifact.resolve(ModelArtifact.MANIFEST);
        ObjectNode manifest = (ObjectNode) JSON.readTree(manifestPath.toFile());
        manifest.put("version", ModelArtifact.VERSION + 1);
        Files.write(manifestPath, JSON.writeValueAsBytes(manifest));
        ModelLoadException newer = assertThrows(ModelLoadException.class, () -> ModelArtifact.open(artifact));
        assertTrue(newer.getMessage().contains("newer than this Kiln reads"), newer.getMessage());
        assertFalse(Files.exists(temp.resolve(fixture.name() + "-cpu-NONE.partial")), "no partial directory is left");
    }
}
