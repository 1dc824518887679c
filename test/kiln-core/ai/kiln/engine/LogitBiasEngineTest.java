package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.testing.Fixtures;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * logit_bias through the engine on the llama3-gqa fixture: a bias of +100 makes its token the only
 * choice (greedy and sampled), -100 keeps the greedy choice off it, and a bias works inside a
 * structured output's mask (added first, so the mask still has the last word).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LogitBiasEngineTest {

    static LocalEngine engine;

    @BeforeAll
    static void open() {
        engine = LocalEngine.create(Fixtures.named("llama3-gqa").dir(),
                EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build());
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static int[] generate(SamplingParams params) {
        return engine.generate(GenerateRequest.of("The bias test", params)).tokenIds();
    }

    @Test
    void aLargePositiveBiasMakesItsTokenTheChoice() {
        for (double temperature : new double[] {0, 1.0}) {
            int[] tokens = generate(SamplingParams.builder().temperature(temperature).seed(4L).maxTokens(12).ignoreEos(true)
                    .logitBias(Map.of(77, 100.0)).build());
            for (int t : tokens) {
                assertEquals(77, t, "temperature " + temperature);
            }
        }
    }

    @Test
    void aLargeNegativeBiasKeepsTheGreedyChoiceOffItsToken() {
        int[] plain = generate(SamplingParams.greedy(1).toBuilder().ignoreEos(true).build());
        int[] biased = generate(SamplingParams.greedy(1).toBuilder().ignoreEos(true)
                .logitBias(Map.of(plain[0], -100.0)).build());
        assertNotEquals(plain[0], biased[0]);
    }

    @Test
    void aBiasActsWithinAStructuredOutput() throws Exception {
        ai.kiln.tokenizer.Tokenizer tokenizer = ai.kiln.tokenizer.Tokenizer.load(Fixtures.named("llama3-gqa").dir());
        int n = tokenizer.encode("n", false)[0];
        GenerateResult r = engine.generate(GenerateRequest.of("Yes or no?", SamplingParams.builder().temperature(0)
                .maxTokens(8).logitBias(Map.of(n, 100.0)).structuredOutput(StructuredOutput.choice(List.of("yes", "no")))
                .build()));
        assertEquals("no", r.text());
        GenerateResult masked = engine.generate(GenerateRequest.of("Yes or no?", SamplingParams.builder().temperature(0)
                .maxTokens(8).logitBias(Map.of(n, 100.0)).structuredOutput(StructuredOutput.choice(List.of("yes", "maybe")))
                .build()));
        assertNotEquals('n', masked.text().charAt(0), "the mask outranks the bias: " + masked.text());
    }

    @Test
    void badBiasesAreRefused() {
        assertEquals("logit_bias values must be in [-100, 100], got 101.0 for token 3",
                assertThrows(IllegalArgumentException.class,
                        () -> SamplingParams.builder().logitBias(Map.of(3, 101.0)).build()).getMessage());
        assertEquals("logit_bias token id 600 is outside the vocabulary [0, 512)",
                assertThrows(IllegalArgumentException.class, () -> engine.submit(GenerateRequest.of("x",
                        SamplingParams.builder().logitBias(Map.of(600, 1.0)).build()))).getMessage());
    }
}
