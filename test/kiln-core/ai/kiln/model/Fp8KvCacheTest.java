package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.KvCacheDType;
import ai.kiln.api.SamplingParams;
import ai.kiln.backend.Backend;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.engine.LocalEngine;
import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.Fixtures;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fixtures with an FP8 (e4m3) KV cache on the CPU, each (token, KV head) row with its own
 * scale: each prompt's last logits against the fp32 reference within twice the error of a naive
 * e4m3-KV computation, bounded by 16 times Hugging Face's bf16 computation's recorded error (e4m3's
 * unit roundoff, 2^-4, is 16 times bf16's, and the bf16 run rounds K and V and everything else);
 * the greedy tokens of the FP8 cache's own path against the reference's, counted and printed; and
 * an engine with an FP8 cache, which holds about four times the tokens of an fp32 one in the same
 * memory.
 */
class Fp8KvCacheTest {

    static Stream<Fixtures.Model> fixtures() {
        return Stream.of("llama3-gqa", "llama2-mha", "qwen3-d128", "mistral-gqa").map(Fixtures::named);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void logitsStayWithinTheE4m3BoundOfTheReference(Fixtures.Model fixture) throws Exception {
        ModelConfig config = ModelConfig.load(fixture.dir());
        try (Backend backend = new CpuBackend(2, 1L << 28);
                WeightFiles files = WeightFiles.open(fixture.dir());
                ModelWeights weights = ModelWeights.load(config, files, backend, WeightQuantization.NONE)) {
            int maxContext = 256;
            int blocksPerSeq = maxContext / FixtureModelTest.BLOCK_SIZE;
            try (LlamaModel model = new LlamaModel(config, weights, backend, maxContext, 4, blocksPerSeq, maxContext);
                    KvCacheStorage cache = new KvCacheStorage(backend, config.numLayers(), blocksPerSeq + 3,
                            FixtureModelTest.BLOCK_SIZE, config.numKvHeads(), config.headDim(), DType.F8_E4M3)) {
                int[] blockTable = new int[blocksPerSeq];
                for (int i = 0; i < blocksPerSeq; i++) {
                    blockTable[i] = blocksPerSeq + 2 - i;
                }
                for (Fixtures.Record record : fixture.records()) {
                    int[] prompt = record.promptTokenIds();
                    float[] logits = new float[config.vocabSize()];
                    Tensor out = model.forward(FixtureModelTest.step(prompt, 0, blockTable), cache);
                    model.synchronize();
                    FixtureModelTest.copyLogits(out, logits, model);
                    double error = Fixtures.relativeError(logits, record.logits());
                    double bf16 = Fixtures.relativeError(record.logitsBf16Compute(), record.logits());
                    double bound = 2 * 16 * bf16;
                    assertTrue(error <= bound, fixture + " '" + record.prompt() + "': logits relative error " + error
                            + " against a bound of " + bound);

                    int same = 0;
                    int next = Fixtures.argmax(logits);
                    int length = prompt.length;
                    int[] reference = record.greedyTokenIds();
                    while (same < reference.length && next == reference[same]) {
                        same++;
                        out = model.forward(FixtureModelTest.step(new int[] {next}, length++, blockTable), cache);
                        FixtureModelTest.copyLogits(out, logits, model);
                        next = Fixtures.argmax(logits);
                    }
                    System.out.printf("Fp8KvCacheTest %s '%.12s': logits relative error %.3g (%.1fx bf16's), greedy"
                            + " tokens equal to the reference's for %d of %d%n", fixture, record.prompt(), error,
                            error / bf16, same, reference.length);
                }
            }
        }
    }

    /** The same memory holds (headDim x 4) / (headDim + 4) times the blocks, and the engine generates. */
    @Test
    void anEngineWithAnFp8CacheHoldsNearlyFourTimesTheTokens() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        ModelConfig config = ModelConfig.load(fixture.dir());
        long bytes = 1L << 20;
        EngineOptions.Builder options = EngineOptions.builder().threads(2).kvCacheBytes(bytes).maxModelLen(256);
        long fp32Block = KvCacheStorage.bytesPerBlock(config.numLayers(), 16, config.numKvHeads(), config.headDim(),
                DType.F32);
        long fp8Block = KvCacheStorage.bytesPerBlock(config.numLayers(), 16, config.numKvHeads(), config.headDim(),
                DType.F8_E4M3);
        assertEquals(2L * config.numLayers() * 16 * config.numKvHeads() * (config.headDim() + 4), fp8Block);
        Fixtures.Record record = fixture.records().get(0);
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(16).ignoreEos(true).build();
        try (Engine fp32 = LocalEngine.create(fixture.dir(), options.build());
                Engine fp8 = LocalEngine.create(fixture.dir(), options.kvCacheDtype(KvCacheDType.FP8).build())) {
            // (the usable blocks: one of the pool's is reserved, the null block of padding slots)
            assertEquals(bytes / fp32Block - 1, fp32.metrics().numKvBlocks());
            assertEquals(bytes / fp8Block - 1, fp8.metrics().numKvBlocks());
            System.out.printf("Fp8KvCacheTest: %d bytes hold %d fp32 blocks, %d FP8 blocks (%.2fx)%n", bytes,
                    fp32.metrics().numKvBlocks(), fp8.metrics().numKvBlocks(),
                    (double) fp8.metrics().numKvBlocks() / fp32.metrics().numKvBlocks());
            assertEquals(KvCacheDType.FP8, fp8.options().kvCacheDtype());
            int[] first = fp8.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy)).tokenIds();
            int[] again = fp8.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy)).tokenIds();
            assertEquals(16, first.length);
            assertArrayEquals(first, again, "the same request twice");
        }
    }
}
