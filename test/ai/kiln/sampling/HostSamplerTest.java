package ai.kiln.sampling;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The host sampler on fixed logits: seeded repeatability, independence from other sequences,
 * the truncations (top-k, top-p, min-p) never choosing an excluded token and otherwise following
 * the renormalised distribution (20 000 draws, fixed seed), penalties and logprobs as vLLM has them.
 */
class HostSamplerTest {

    static final int V = 10;
    // Softmax of these: token 0 most likely, then 1, 2, ...; token 9 least.
    static final float[] LOGITS = {3.0f, 2.5f, 2.0f, 1.6f, 1.2f, 0.8f, 0.3f, 0.0f, -0.5f, -1.0f};
    static final int DRAWS = 20_000;

    private final HostSampler sampler = new HostSampler(null, 4, V);
    private final SamplerOutput out = new SamplerOutput(4);

    private static SequenceSampling state(SamplingParams params, long seed) {
        return new SequenceSampling(params, seed, new int[0], 0, new int[0]);
    }

    private int sample(SequenceSampling state) {
        return sampler.sampleRow(LOGITS, 0, state, out, 0);
    }

    private static double[] softmax(float[] logits, double temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Draws with a fresh state per draw series; returns frequencies. */
    private double[] frequencies(SamplingParams params) {
        SequenceSampling state = state(params, 12345);
        int[] counts = new int[V];
        for (int i = 0; i < DRAWS; i++) {
            counts[sample(state)]++;
        }
        return Arrays.stream(counts).mapToDouble(c -> (double) c / DRAWS).toArray();
    }

    /** Keeps the tokens in {@code kept}, renormalises, compares within 0.015 absolute; excluded ones never drawn. */
    private static void assertDistribution(double[] p, boolean[] kept, double[] observed) {
        double mass = 0;
        for (int i = 0; i < V; i++) {
            mass += kept[i] ? p[i] : 0;
        }
        for (int i = 0; i < V; i++) {
            if (!kept[i]) {
                assertEquals(0.0, observed[i], "excluded token " + i + " was drawn");
            } else {
                assertEquals(p[i] / mass, observed[i], 0.015, "token " + i);
            }
        }
    }

    @Test
    void greedyTakesTheFirstMaximum() {
        float[] tied = {0f, 5f, 1f, 5f, 0f, 0f, 0f, 0f, 0f, 0f};
        SequenceSampling s = state(SamplingParams.greedy(4), 1);
        assertEquals(1, sampler.sampleRow(tied, 0, s, out, 0));
        assertEquals(0, sample(s));
        assertEquals(2, s.numGenerated());
    }

    @Test
    void sameSeedSameTokensOtherSeedOtherTokens() {
        SamplingParams params = SamplingParams.builder().temperature(1.0).build();
        int[] first = new int[200];
        int[] again = new int[200];
        int[] other = new int[200];
        SequenceSampling a = state(params, 7);
        SequenceSampling b = state(params, 7);
        SequenceSampling c = state(params, 8);
        for (int i = 0; i < 200; i++) {
            first[i] = sample(a);
        }
        // Interleaved with another sequence's draws: each sequence's stream is its own.
        for (int i = 0; i < 200; i++) {
            other[i] = sample(c);
            again[i] = sample(b);
        }
        assertArrayEquals(first, again);
        assertFalse(Arrays.equals(first, other));
    }

    @Test
    void temperatureFollowsTheSoftmax() {
        boolean[] all = new boolean[V];
        Arrays.fill(all, true);
        assertDistribution(softmax(LOGITS, 1.0), all, frequencies(SamplingParams.builder().temperature(1.0).build()));
        assertDistribution(softmax(LOGITS, 0.5), all, frequencies(SamplingParams.builder().temperature(0.5).build()));
    }

    @Test
    void topKKeepsTheKMostLikely() {
        boolean[] kept = new boolean[V];
        kept[0] = kept[1] = kept[2] = true;
        assertDistribution(softmax(LOGITS, 1.0), kept, frequencies(SamplingParams.builder().topK(3).build()));
    }

    @Test
    void topPKeepsTheNucleus() {
        double[] p = softmax(LOGITS, 1.0);
        // Keep a token while the mass of the more likely tokens is below 0.6.
        boolean[] kept = new boolean[V];
        double above = 0;
        for (int i = 0; i < V; i++) {
            kept[i] = above < 0.6;
            above += p[i];
        }
        assertTrue(kept[1] && !kept[V - 1]);
        assertDistribution(p, kept, frequencies(SamplingParams.builder().topP(0.6).build()));
    }

    @Test
    void minPDropsTokensFarBelowTheMostLikely() {
        double[] p = softmax(LOGITS, 1.0);
        boolean[] kept = new boolean[V];
        for (int i = 0; i < V; i++) {
            kept[i] = p[i] >= 0.2 * p[0];
        }
        assertTrue(kept[3] && !kept[5]);
        assertDistribution(p, kept, frequencies(SamplingParams.builder().minP(0.2).build()));
    }

    @Test
    void truncationsCompose() {
        // min-p 0.1 at temperature 0.7, then top-k 5, then top-p 0.8 of what is left.
        double[] p = softmax(LOGITS, 0.7);
        boolean[] kept = new boolean[V];
        for (int i = 0; i < 5; i++) {
            kept[i] = p[i] >= 0.1 * p[0];
        }
        double mass = 0;
        for (int i = 0; i < V; i++) {
            mass += kept[i] ? p[i] : 0;
        }
        double above = 0;
        for (int i = 0; i < V; i++) {
            if (kept[i]) {
                kept[i] = above < 0.8 * mass;
                above += p[i];
            }
        }
        assertDistribution(p, kept, frequencies(SamplingParams.builder().temperature(0.7).minP(0.1).topK(5)
                .topP(0.8).build()));
    }

    @Test
    void topKKeepsTiesOfTheKthValue() {
        float[] tied = {4f, 3f, 3f, 3f, 0f, 0f, 0f, 0f, 0f, 0f};
        SequenceSampling s = state(SamplingParams.builder().topK(2).build(), 99);
        boolean[] seen = new boolean[V];
        for (int i = 0; i < 5000; i++) {
            seen[sampler.sampleRow(tied, 0, s, out, 0)] = true;
        }
        assertTrue(seen[0] && seen[1] && seen[2] && seen[3]);
        assertFalse(seen[4]);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        // Prompt holds tokens 0 and 9: 3.0 / 2 = 1.5 falls below token 2 (2.0); -1.0 * 2 = -2.0.
        SamplingParams params = SamplingParams.builder().temperature(0).repetitionPenalty(2.0).logprobs(0).build();
        SequenceSampling s = new SequenceSampling(params, 0, new int[] {0, 9}, 2, new int[0]);
        assertEquals(1, sample(s), "2.5 is the largest after the penalty");
        // The output token 1 is penalised too now: 2.5 / 2 = 1.25 < 2.0.
        assertEquals(2, sample(s));
    }

    @Test
    void frequencyAndPresencePenaltiesCountTheOutput() {
        SamplingParams freq = SamplingParams.builder().temperature(0).frequencyPenalty(0.3).build();
        SequenceSampling s = new SequenceSampling(freq, 0, new int[] {1, 1, 1}, 3, new int[0]);
        int[] tokens = new int[6];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = sample(s);
        }
        // Prompt tokens are not penalised; token 0 loses 0.3 per use: 3.0, 2.7 > 2.5, then 2.4 < 2.5 ...
        assertArrayEquals(new int[] {0, 0, 1, 0, 1, 0}, tokens);

        SamplingParams presence = SamplingParams.builder().temperature(0).presencePenalty(0.6).build();
        SequenceSampling q = new SequenceSampling(presence, 0, new int[0], 0, new int[0]);
        int[] seq = {sample(q), sample(q), sample(q), sample(q)};
        // 0: 3.0 -> 2.4 once used; 1: 2.5 -> 1.9; 2: 2.0 -> 1.4; then 0 again (2.4 is the largest left).
        assertArrayEquals(new int[] {0, 1, 0, 0}, seq);
    }

    @Test
    void minTokensSuppressesEndOfSequence() {
        SamplingParams params = SamplingParams.builder().temperature(0).minTokens(2).maxTokens(4).build();
        SequenceSampling s = new SequenceSampling(params, 0, new int[0], 0, new int[] {0});
        assertFalse(s.isPlainGreedy());
        assertEquals(1, sample(s));
        assertEquals(1, sample(s));
        assertEquals(0, sample(s), "suppressed only until min_tokens are generated");
    }

    @Test
    void logprobsAreThoseOfTheRawLogits() {
        double[] p = softmax(LOGITS, 1.0);
        SamplingParams params = SamplingParams.builder().temperature(5.0).topK(2).logprobs(3).build();
        SequenceSampling s = state(params, 3);
        int token = sample(s);
        TokenLogprobs lp = out.logprobs(0);
        assertEquals(token, lp.tokenId());
        assertEquals(Math.log(p[token]), lp.logprob(), 1e-5);
        assertEquals(token + 1, lp.rank());
        assertEquals(List.of(0, 1, 2), lp.top().stream().map(TokenLogprobs.Candidate::tokenId).toList());
        for (TokenLogprobs.Candidate c : lp.top()) {
            assertEquals(Math.log(p[c.tokenId()]), c.logprob(), 1e-5);
        }
    }

    @Test
    void everyTruncationKeepsAtLeastOneToken() {
        for (Consumer<SamplingParams.Builder> change : List.<Consumer<SamplingParams.Builder>>of(
                b -> b.topP(1e-9), b -> b.topK(1), b -> b.minP(1.0))) {
            SamplingParams.Builder b = SamplingParams.builder();
            change.accept(b);
            SequenceSampling s = state(b.build(), 5);
            for (int i = 0; i < 100; i++) {
                assertEquals(0, sample(s));
            }
        }
    }
}
