package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.KvCacheDType;
import ai.kiln.api.SamplingParams;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.backend.cuda.CudaFixtureModelTest.Loaded;
import ai.kiln.engine.LocalEngine;
import ai.kiln.model.WeightQuantization;
import ai.kiln.tensor.DType;
import ai.kiln.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The FP8 (e4m3) KV cache on the CUDA backend (bf16 activations), on the fixtures whose head sizes
 * the attention kernels cover (64 and 128). The bound is the CPU backend's for its FP8 cache
 * (Fp8KvCacheTest): twice a naive e4m3 computation's error, taken as 16 times Hugging Face's own
 * bf16 error (e4m3's unit roundoff is 16 times bf16's), plus the 1e-2 of the bf16 bound; the prompt's
 * last logits are held to it against Hugging Face's fp32 record, and every greedy decode step's
 * against the CPU backend's FP8 cache along the same path (its step's bf16 error taken the same
 * way). The op harness holds the kernels to their naive bound op by op; this checks that the model
 * hands each layer its own cache and scales, in prefill and in decode.
 */
@Tag("gpu")
class CudaFp8KvCacheTest {

    @BeforeAll
    static void requireGpu() {
        String reason = CudaBackend.unavailableReason();
        if (reason != null) {
            System.out.println("CudaFp8KvCacheTest skipped: " + reason);
        }
        assumeTrue(reason == null, reason);
    }

    static Stream<Fixtures.Model> fixtures() {
        return Stream.of("llama32-d64-bf16", "qwen3-d128", "kiln-demo").map(Fixtures::named);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void logitsWithinTheE4m3BoundOfTheReferenceAndTheCpuBackendsFp8Cache(Fixtures.Model fixture) {
        try (Loaded gpu = Loaded.of(new CudaBackend(0, DType.BF16), fixture.dir(), WeightQuantization.NONE, 256, 4,
                DType.F8_E4M3);
                Loaded cpu = Loaded.of(new CpuBackend(0, 1L << 30), fixture.dir(), WeightQuantization.NONE, 256, 4,
                        DType.F8_E4M3)) {
            double[] worst = {0, 0}; // (error / bound) at the prompt's end and along the decode steps
            int[] agreement = {0, 0};
            CudaFixtureModelTest.walkGreedyPaths(fixture, gpu, cpu, (record, step, gpuLogits, cpuLogits) -> {
                double hfBf16 = step == 0 ? Fixtures.relativeError(record.logitsBf16Compute(), record.logits())
                        : record.bf16PathErrors()[step - 1];
                double bound = 2 * 16 * hfBf16 + 1e-2;
                double error = step == 0 ? Fixtures.relativeError(gpuLogits, record.logits())
                        : Fixtures.relativeError(gpuLogits, cpuLogits);
                worst[step == 0 ? 0 : 1] = Math.max(worst[step == 0 ? 0 : 1], error / bound);
                assertTrue(error <= bound, fixture + " '" + record.prompt() + "' step " + step + ": logits error "
                        + error + ", bound " + bound);
                if (step < CudaFixtureModelTest.DECODE_STEPS) {
                    agreement[0] += Fixtures.argmax(gpuLogits) == Fixtures.argmax(cpuLogits) ? 1 : 0;
                    agreement[1]++;
                }
            });
            System.out.printf("CudaFp8KvCacheTest %s: error at most %.2f of the bound at the prompt's end (vs HF"
                    + " fp32), %.2f along the decode steps (vs the CPU's FP8 cache); greedy agreement with the CPU's"
                    + " FP8 path %d/%d%n", fixture, worst[0], worst[1], agreement[0], agreement[1]);
        }
    }

    /**
     * An engine with an FP8 cache (decode graphs, mixed steps): the same request alone twice gives
     * the same tokens, and eight at once all complete with their full length.
     */
    @Test
    void anEngineWithAnFp8CacheServesConcurrentRequests() throws Exception {
        Fixtures.Model fixture = Fixtures.named("qwen3-d128");
        EngineOptions options = EngineOptions.builder().device("cuda").maxModelLen(512).maxRunningSeqs(8)
                .kvCacheDtype(KvCacheDType.FP8).build();
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(48).ignoreEos(true).build();
        int[] prompt = fixture.records().get(2).promptTokenIds();
        try (Engine engine = LocalEngine.create(fixture.dir(), options)) {
            assertEquals(KvCacheDType.FP8, engine.options().kvCacheDtype());
            int[] first = engine.generate(GenerateRequest.ofTokens(prompt, greedy)).tokenIds();
            int[] again = engine.generate(GenerateRequest.ofTokens(prompt, greedy)).tokenIds();
            assertEquals(48, first.length);
            assertArrayEquals(first, again, "the same request twice");
            List<CompletableFuture<int[]>> running = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int[] shifted = prompt.clone();
                shifted[0] = prompt[i % prompt.length]; // eight prompts, some alike
                running.add(CompletableFuture.supplyAsync(
                        () -> engine.generate(GenerateRequest.ofTokens(shifted, greedy)).tokenIds()));
            }
            for (CompletableFuture<int[]> request : running) {
                assertEquals(48, request.get().length);
            }
        }
    }

    /** A head size the kernels do not cover is refused at load, naming the flag. */
    @Test
    void aHeadSizeWithoutKernelsIsRefusedAtLoad() {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa-bf16");
        EngineOptions options = EngineOptions.builder().device("cuda").maxModelLen(256)
                .kvCacheDtype(KvCacheDType.FP8).build();
        EngineException refused = assertThrows(EngineException.class, () -> LocalEngine.create(fixture.dir(), options));
        assertTrue(refused.getMessage().contains("--kv-cache-dtype fp8") && refused.getMessage().contains("head_dim 16"),
                refused.getMessage());
    }
}
