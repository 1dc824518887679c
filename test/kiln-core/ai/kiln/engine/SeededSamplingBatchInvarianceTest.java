package ai.kiln.engine;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.RequestHandle;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.SamplingParams;
import ai.kiln.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A seeded sampled request gives the same tokens alone, among 255 others of other parameters
 * (every sampling field, penalties and min_tokens included, other seeds and lengths), and after
 * being preempted and recomputed: its draws depend on its seed and its own logits only.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SeededSamplingBatchInvarianceTest {

    static final int TOKENS = 32;

    static SamplingParams subject(long seed) {
        return SamplingParams.builder().temperature(0.8).topP(0.95).topK(40).minP(0.02).repetitionPenalty(1.1)
                .frequencyPenalty(0.2).presencePenalty(0.3).minTokens(4).seed(seed).maxTokens(TOKENS).ignoreEos(true)
                .logprobs(2).build();
    }

    /** Request i of the crowd: its own mix of parameters. */
    static SamplingParams other(int i) {
        SamplingParams.Builder b = SamplingParams.builder().maxTokens(8 + i % 24).ignoreEos(i % 3 != 0).seed((long) i);
        switch (i % 6) {
            case 0 -> b.temperature(0);
            case 1 -> b.temperature(1.0);
            case 2 -> b.temperature(0.6).topK(5);
            case 3 -> b.temperature(1.2).topP(0.7).minP(0.1);
            case 4 -> b.temperature(0.9).frequencyPenalty(1.0).repetitionPenalty(1.4).logprobs(5);
            default -> b.temperature(0).presencePenalty(0.8).minTokens(3);
        }
        return b.build();
    }

    @Test
    void seededRequestIsTheSameAloneAmong255OthersAndAfterPreemption() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        List<int[]> prompts = EngineTest.prompts(fixture);
        int[] prompt = prompts.get(2);
        int[][] alone = new int[3][];
        try (Engine engine = EngineTest.engine(fixture, b -> b.maxRunningSeqs(256).kvCacheBytes(64L << 20))) {
            for (int s = 0; s < 3; s++) {
                alone[s] = engine.generate(GenerateRequest.ofTokens(prompt, subject(100 + s))).tokenIds();
            }
            assertTrue(!Arrays.equals(alone[0], alone[1]), "seeds 100 and 101 gave the same tokens");
            // Three subjects among 253 others, submitted in between them.
            List<RequestHandle> crowd = new ArrayList<>();
            RequestHandle[] subjects = new RequestHandle[3];
            for (int i = 0; i < 256; i++) {
                if (i % 100 == 50) {
                    subjects[i / 100] = engine.submit(GenerateRequest.ofTokens(prompt, subject(100 + i / 100)));
                } else {
                    crowd.add(engine.submit(GenerateRequest.ofTokens(prompts.get(i % prompts.size()), other(i))));
                }
            }
            for (int s = 0; s < 3; s++) {
                assertArrayEquals(alone[s], subjects[s].result().get(120, TimeUnit.SECONDS).tokenIds(),
                        "subject " + s + " among 253 others");
            }
            for (RequestHandle h : crowd) {
                h.result().get(120, TimeUnit.SECONDS);
            }
            EngineTest.assertIdle(engine);
        }
        // A pool too small for all at once: the latest admitted are preempted and recomputed.
        try (Engine engine = EngineTest.engine(fixture, b -> b.kvCacheBytes(EngineTest.kvBytes(fixture, 14))
                .maxBatchedTokens(32).maxRunningSeqs(8))) {
            List<RequestHandle> crowd = new ArrayList<>();
            RequestHandle[] subjects = new RequestHandle[3];
            for (int i = 0; i < 9; i++) {
                if (i % 3 == 2) {
                    subjects[i / 3] = engine.submit(GenerateRequest.ofTokens(prompt, subject(100 + i / 3)));
                } else {
                    crowd.add(engine.submit(GenerateRequest.ofTokens(prompts.get(i % prompts.size()),
                            other(i).toBuilder().maxTokens(TOKENS).ignoreEos(true).build())));
                }
            }
            for (int s = 0; s < 3; s++) {
                assertArrayEquals(alone[s], subjects[s].result().get(120, TimeUnit.SECONDS).tokenIds(),
                        "subject " + s + " with preemptions");
            }
            for (RequestHandle h : crowd) {
                h.result().get(120, TimeUnit.SECONDS);
            }
            assertTrue(engine.metrics().numPreemptions() > 0, "expected preemptions, got " + engine.metrics());
            EngineTest.assertIdle(engine);
        }
    }
}
