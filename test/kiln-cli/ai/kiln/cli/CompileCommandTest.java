package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.engine.LocalEngine;
import ai.kiln.model.ModelArtifact;
import ai.kiln.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln compile}: a compiled fixture that {@code kiln generate} and the engine load, and the
 * refusals of bad options (exit 2) and of a destination that exists (exit 1). The artifact format
 * itself is tested in kiln-core's ModelArtifactTest, serving it from a file server and a bucket in
 * HttpModelDownloadTest and S3ModelStoreTest.
 */
class CompileCommandTest {

    @TempDir
    Path dir;

    @Test
    void compilesAFixtureThatGenerateAndTheEngineLoad() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path out = dir.resolve("compiled");
        GenerateCommandTest.Run compiled = GenerateCommandTest.kiln("compile", "--model", fixture.dir().toString(),
                "--target", "cpu", "--quantization", "fp8", "--out", out.toString());
        assertEquals(0, compiled.exitCode(), compiled.err());
        assertTrue(compiled.out().contains("compiled " + fixture.dir() + " for cpu (quantization fp8)"), compiled.out());
        assertTrue(ModelArtifact.isArtifact(out));
        assertFalse(Files.exists(dir.resolve("compiled.partial")));

        GenerateCommandTest.Run generated = GenerateCommandTest.kiln("generate", "--model", out.toString(), "--prompt",
                "Hello", "--max-tokens", "4", "--temperature", "0", "--threads", "2");
        assertEquals(0, generated.exitCode(), generated.err());

        Fixtures.Record record = fixture.records().get(0);
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(8).ignoreEos(true).build();
        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(256).build();
        try (Engine artifact = LocalEngine.create(out, options);
                Engine source = LocalEngine.create(fixture.dir(), EngineOptions.builder().threads(2)
                        .kvCacheBytes(8L << 20).maxModelLen(256).quantization(ai.kiln.api.Quantization.FP8).build())) {
            assertArrayEquals(source.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy)).tokenIds(),
                    artifact.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy)).tokenIds());
        }

        GenerateCommandTest.Run again = GenerateCommandTest.kiln("compile", "--model", fixture.dir().toString(),
                "--target", "cpu", "--out", out.toString());
        assertEquals(1, again.exitCode());
        assertTrue(again.err().contains("exists"), again.err());
    }

    @Test
    void aHubModelsRevisionIsItsSnapshotsCommit() {
        Path snapshot = dir.resolve("hub/models--org--name/snapshots/0123abcd");
        assertEquals("0123abcd", CompileCommand.commitOf(snapshot, "main"));
        assertEquals("main", CompileCommand.commitOf(dir.resolve("elsewhere/model"), "main"));
    }

    @Test
    void refusesAnUnknownTargetAndQuantizationsTheTargetCannotRun() {
        String model = Fixtures.named("llama3-gqa").dir().toString();
        String out = dir.resolve("x").toString();
        GenerateCommandTest.Run target = GenerateCommandTest.kiln("compile", "--model", model, "--target", "tpu",
                "--out", out);
        assertEquals(2, target.exitCode());
        assertTrue(target.err().contains("unknown target 'tpu'") && target.err().contains("cuda-sm90"), target.err());
        GenerateCommandTest.Run fp8 = GenerateCommandTest.kiln("compile", "--model", model, "--target", "cuda-sm80",
                "--quantization", "fp8", "--out", out);
        assertEquals(2, fp8.exitCode());
        assertTrue(fp8.err().contains("does not run on cuda-sm80"), fp8.err());
        GenerateCommandTest.Run int8 = GenerateCommandTest.kiln("compile", "--model", model, "--target", "cuda-sm90",
                "--quantization", "int8", "--out", out);
        assertEquals(2, int8.exitCode());
        assertTrue(int8.err().contains("CPU-backend format"), int8.err());
        assertFalse(Files.exists(dir.resolve("x")));
    }
}
