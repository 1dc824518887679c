package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.Quantization;
import ai.kiln.api.SamplingParams;
import ai.kiln.engine.LocalEngine;
import ai.kiln.model.ArtifactCompiler;
import ai.kiln.model.ArtifactTarget;
import ai.kiln.model.WeightQuantization;
import ai.kiln.testing.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Artifacts compiled on the CPU for this GPU's target (bf16 weights, or FP8 with row scales on
 * compute capability 9.0) give the greedy tokens of the source directory loaded on the same GPU.
 */
@Tag("gpu")
class CudaArtifactTest {

    @TempDir
    Path temp;

    static String target;

    @BeforeAll
    static void requireGpu() {
        String reason = CudaBackend.unavailableReason();
        if (reason != null) {
            System.out.println("CudaArtifactTest skipped: " + reason);
        }
        assumeTrue(reason == null, reason);
        try (CudaBackend backend = new CudaBackend(0, ai.kiln.tensor.DType.BF16)) {
            target = backend.artifactTarget();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"llama3-gqa, NONE", "qwen2-bias-tied, NONE", "qwen3-d128, FP8"})
    void anArtifactForThisGpuGivesTheSourcesGreedyTokens(String name, WeightQuantization quantization)
            throws Exception {
        assumeTrue(quantization != WeightQuantization.FP8 || target.equals("cuda-sm90"), "FP8 needs cuda-sm90");
        Fixtures.Model fixture = Fixtures.named(name);
        Path artifact = temp.resolve(name);
        new ArtifactCompiler(new PrintWriter(new StringWriter())).compile(fixture.dir(), name, null,
                ArtifactTarget.fromFlag(target), quantization, artifact);
        Quantization asked = quantization == WeightQuantization.FP8 ? Quantization.FP8 : Quantization.NONE;
        EngineOptions options = EngineOptions.builder().device("cuda").maxModelLen(256).maxRunningSeqs(4)
                .quantization(asked).build();
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(16).ignoreEos(true).build();
        try (Engine compiled = LocalEngine.create(artifact, options);
                Engine source = LocalEngine.create(fixture.dir(), options)) {
            assertEquals(asked, source.options().quantization());
            for (Fixtures.Record record : fixture.records()) {
                assertArrayEquals(source.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy)).tokenIds(),
                        compiled.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy)).tokenIds(),
                        name + " '" + record.prompt() + "'");
            }
        }
    }
}
