package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.testing.Fixtures;
import java.util.Arrays;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The engine's seed: drawn from entropy unless given, so that unseeded requests differ from one
 * engine (one run) to the next, while a given engine seed, or a request's own seed, repeats.
 */
class EngineSeedTest {

    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");
    // Temperature 1 over a random-weight model: 48 draws from a near-uniform distribution.
    static final SamplingParams UNSEEDED = SamplingParams.builder().temperature(1.0).maxTokens(48).ignoreEos(true).build();

    static int[] firstSampledRequest(Consumer<EngineOptions.Builder> options, SamplingParams params) {
        try (LocalEngine engine = EngineTest.engine(FIXTURE, options)) {
            return engine.generate(GenerateRequest.ofTokens(FIXTURE.records().get(0).promptTokenIds(), params))
                    .tokenIds();
        }
    }

    @Test
    void unseededRequestsDifferFromRunToRun() {
        int[] first = firstSampledRequest(b -> { }, UNSEEDED);
        int[] second = firstSampledRequest(b -> { }, UNSEEDED);
        assertFalse(Arrays.equals(first, second), "two engines without a seed drew the same 48 tokens");
    }

    @Test
    void aGivenEngineSeedOrRequestSeedRepeats() {
        assertArrayEquals(firstSampledRequest(b -> b.seed(7L), UNSEEDED), firstSampledRequest(b -> b.seed(7L), UNSEEDED));
        SamplingParams seeded = UNSEEDED.toBuilder().seed(99L).build();
        assertArrayEquals(firstSampledRequest(b -> { }, seeded), firstSampledRequest(b -> { }, seeded));
    }
}
