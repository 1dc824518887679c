package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.Backend;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.Fixtures;
import ai.kiln.testing.ModelSteps;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import java.util.function.ToIntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every fixture architecture on the CPU backend against the Hugging Face records: last-position
 * logits within 1e-4 relative error, 32 greedy tokens exactly equal; with weights as stored and
 * with int8 weights. The model is driven directly
 * (one sequence, its blocks in a shuffled order so the block table matters), prefill then one
 * token per step through the paged KV cache.
 */
class FixtureModelTest {

    static final double LOGITS_TOLERANCE = 1e-4;
    static final int BLOCK_SIZE = 16;

    static List<Fixtures.Model> fixtures() {
        return Fixtures.all();
    }

    @Test
    void fixturesCoverEveryArchitectureAndFeature() {
        Set<String> architectures = new TreeSet<>();
        boolean gqa = false, mqa = false, mha = false, tied = false, untied = false, bias = false, qkNorm = false;
        boolean llama3Scaling = false, bf16 = false, sharded = false;
        for (Fixtures.Model fixture : Fixtures.all()) {
            ModelConfig config = ModelConfig.load(fixture.dir());
            architectures.add(config.architecture());
            mha |= config.numKvHeads() == config.numHeads();
            mqa |= config.numKvHeads() == 1;
            gqa |= config.numKvHeads() > 1 && config.numKvHeads() < config.numHeads();
            tied |= config.tieWordEmbeddings();
            untied |= !config.tieWordEmbeddings();
            bias |= config.qkvBias();
            qkNorm |= config.qkNorm();
            llama3Scaling |= config.ropeScaling().type().equals("llama3");
            bf16 |= fixture.dtype().equals("bfloat16");
            sharded |= fixture.dir().resolve("model.safetensors.index.json").toFile().isFile();
        }
        assertEquals(new TreeSet<>(ModelConfig.SUPPORTED_ARCHITECTURES), architectures);
        assertTrue(gqa && mqa && mha && tied && untied && bias && qkNorm && llama3Scaling && bf16 && sharded);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void logitsAndGreedyTokensMatchTheReference(Fixtures.Model fixture) {
        runFixture(fixture, WeightQuantization.NONE);
    }

    /**
     * With int8 weights, against Hugging Face running the same int8 values (reference-int8.json):
     * the same bounds, since both compute in fp32 from equal weights.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void int8LogitsAndGreedyTokensMatchTheInt8Reference(Fixtures.Model fixture) {
        runFixture(Fixtures.load(fixture.dir(), "reference-int8.json"), WeightQuantization.INT8);
    }

    private static void runFixture(Fixtures.Model fixture, WeightQuantization quantization) {
        runFixture(fixture, quantization, record -> LOGITS_TOLERANCE);
    }

    /** Runs every record of the fixture; last-position logits within the record's relative error bound, greedy tokens equal. */
    static void runFixture(Fixtures.Model fixture, WeightQuantization quantization,
            ToDoubleFunction<Fixtures.Record> logitsTolerance) {
        runFixture(fixture, quantization, logitsTolerance, record -> record.greedyTokenIds().length,
                () -> new CpuBackend(0, 1L << 30));
    }

    /**
     * {@link #runFixture(Fixtures.Model, WeightQuantization, ToDoubleFunction)} on the backend given,
     * comparing the first comparedTokens of each record's greedy tokens.
     */
    static void runFixture(Fixtures.Model fixture, WeightQuantization quantization,
            ToDoubleFunction<Fixtures.Record> logitsTolerance, ToIntFunction<Fixtures.Record> comparedTokens,
            Supplier<Backend> backends) {
        ModelConfig config = ModelConfig.load(fixture.dir());
        try (Backend backend = backends.get();
                WeightFiles files = WeightFiles.open(fixture.dir());
                ModelWeights weights = ModelWeights.load(config, files, backend, quantization)) {
            int maxContext = 256;
            int blocksPerSeq = maxContext / BLOCK_SIZE;
            try (LlamaModel model = new LlamaModel(config, weights, backend, maxContext, 4, blocksPerSeq, maxContext);
                    KvCacheStorage cache = new KvCacheStorage(backend, config.numLayers(), blocksPerSeq + 3,
                            BLOCK_SIZE, config.numKvHeads(), config.headDim())) {
                for (Fixtures.Record record : fixture.records()) {
                    runRecord(fixture, record, config, model, cache, blocksPerSeq, logitsTolerance.applyAsDouble(record),
                            comparedTokens.applyAsInt(record));
                }
            }
        }
    }

    private static void runRecord(Fixtures.Model fixture, Fixtures.Record record, ModelConfig config,
            LlamaModel model, KvCacheStorage cache, int blocksPerSeq, double logitsTolerance, int comparedTokens) {
        // Blocks in reverse order, skipping block 0, so that a wrong block-table lookup shows.
        int[] blockTable = new int[blocksPerSeq];
        for (int i = 0; i < blocksPerSeq; i++) {
            blockTable[i] = blocksPerSeq + 2 - i;
        }
        int[] prompt = record.promptTokenIds();
        float[] logits = new float[config.vocabSize()];
        Tensor out = model.forward(step(prompt, 0, blockTable), cache);
        model.synchronize();
        copyLogits(out, logits, model);
        double error = Fixtures.relativeError(logits, record.logits());
        assertTrue(error <= logitsTolerance, fixture + " '" + record.prompt() + "': logits relative error " + error);

        int[] generated = new int[comparedTokens];
        int next = Fixtures.argmax(logits);
        int length = prompt.length;
        for (int i = 0; i < generated.length; i++) {
            generated[i] = next;
            out = model.forward(step(new int[] {next}, length, blockTable), cache);
            length++;
            copyLogits(out, logits, model);
            next = Fixtures.argmax(logits);
        }
        assertArrayEquals(Arrays.copyOf(record.greedyTokenIds(), comparedTokens), generated, fixture + " '" + record.prompt() + "': greedy tokens "
                + Arrays.toString(generated));
    }

    static void copyLogits(Tensor out, float[] logits, LlamaModel model) {
        model.backend().copyToHost(out, logits, logits.length);
    }

    static ForwardBatch step(int[] tokens, int start, int[] blockTable) {
        return ModelSteps.singleSequenceStep(tokens, start, blockTable, BLOCK_SIZE);
    }
}
