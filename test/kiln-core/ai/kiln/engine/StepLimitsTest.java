package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.kiln.api.EngineOptions;
import ai.kiln.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** Step limits left to the device: vLLM's by device memory; limits given are kept; the engine reports its choice. */
class StepLimitsTest {

    static final EngineOptions UNSET = EngineOptions.builder().build();

    @Test
    void largeGpusBatchMore() {
        EngineOptions h200 = StepLimits.resolve(UNSET, 141L << 30);
        assertEquals(8192, h200.maxBatchedTokens());
        assertEquals(1024, h200.maxRunningSeqs());
        EngineOptions smallGpu = StepLimits.resolve(UNSET, 24L << 30);
        assertEquals(2048, smallGpu.maxBatchedTokens());
        assertEquals(256, smallGpu.maxRunningSeqs());
        EngineOptions justLarge = StepLimits.resolve(UNSET, StepLimits.LARGE_GPU_BYTES);
        assertEquals(1024, justLarge.maxRunningSeqs());
        EngineOptions cpu = StepLimits.resolve(UNSET, null);
        assertEquals(2048, cpu.maxBatchedTokens());
        assertEquals(256, cpu.maxRunningSeqs());
    }

    @Test
    void givenLimitsAreKept() {
        EngineOptions given = StepLimits.resolve(UNSET.toBuilder().maxBatchedTokens(100).build(), 141L << 30);
        assertEquals(100, given.maxBatchedTokens());
        assertEquals(1024, given.maxRunningSeqs());
        EngineOptions both = StepLimits.resolve(UNSET.toBuilder().maxBatchedTokens(64).maxRunningSeqs(3).build(), null);
        assertEquals(64, both.maxBatchedTokens());
        assertEquals(3, both.maxRunningSeqs());
    }

    @Test
    void theEngineReportsWhatItChose() {
        try (LocalEngine engine = LocalEngine.create(Fixtures.named("llama3-gqa").dir(),
                EngineOptions.builder().kvCacheBytes(4L << 20).maxModelLen(128).maxRunningSeqs(5).build())) {
            assertEquals(2048, engine.options().maxBatchedTokens());
            assertEquals(5, engine.options().maxRunningSeqs());
        }
    }
}
