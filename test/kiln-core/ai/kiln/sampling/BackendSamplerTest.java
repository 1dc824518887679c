package ai.kiln.sampling;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.SamplingParams;
import ai.kiln.backend.HostTensors;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.SampledSequence;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The sampler on the CPU backend's sample op, on fixed logits: seeded repeatability and
 * independence from the rest of the batch; each truncation (top-k, top-p, min-p, their
 * composition) never drawing an excluded token and otherwise following the renormalised
 * distribution (Pearson's chi-square over 200 000 draws, failing below p = 1e-6, so an exact
 * sampler fails with probability 1e-6); penalties, min-tokens and log-probabilities as vLLM has
 * them; and the penalty rows' cache giving the same tokens when rows are taken back and rebuilt.
 */
class BackendSamplerTest {

    static final int V = 10;
    // Softmax of these: token 0 most likely, then 1, 2, ...; token 9 least.
    static final float[] LOGITS = {3.0f, 2.5f, 2.0f, 1.6f, 1.2f, 0.8f, 0.3f, 0.0f, -0.5f, -1.0f};
    static final int BATCH = 500;
    static final int DRAWS = 200_000;
    static final double FALSE_ALARM = 1e-6;

    static CpuBackend backend;

    @BeforeAll
    static void open() {
        backend = new CpuBackend(2, 256L << 20);
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    /** The sampler over a logits tensor of {@code rows} copies of one row. */
    static final class Bench implements AutoCloseable {
        final BackendSampler sampler;
        final Tensor logits;
        final SamplerOutput out;
        final SamplingBatch batch;

        Bench(int rows, float[] row) {
            sampler = new BackendSampler(backend, rows, row.length);
            float[] all = new float[rows * row.length];
            for (int r = 0; r < rows; r++) {
                System.arraycopy(row, 0, all, r * row.length, row.length);
            }
            logits = backend.allocate(DType.F32, rows, row.length);
            Tensor host = HostTensors.floats(all, rows, row.length);
            backend.upload(logits, host);
            HostTensors.release(host);
            out = new SamplerOutput(rows);
            batch = new SamplingBatch(rows);
        }

        /** One step over these rows (in logits-row order); each gets its token appended. */
        int[] step(List<SampledSequence> rows) {
            batch.clear();
            for (SampledSequence r : rows) {
                r.addTo(batch);
            }
            sampler.sample(logits, batch, out);
            int[] ids = new int[rows.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = out.tokenId(i);
                rows.get(i).append(ids[i]);
            }
            return ids;
        }

        int step(SampledSequence row) {
            return step(List.of(row))[0];
        }

        @Override
        public void close() {
            sampler.close();
            backend.free(logits);
        }
    }

    static double[] softmax(float[] logits, double temperature) {
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

    /** Draw counts over BATCH sequences of consecutive seeds, DRAWS in all. */
    static long[] counts(SamplingParams params) {
        long[] counts = new long[V];
        try (Bench bench = new Bench(BATCH, LOGITS)) {
            List<SampledSequence> rows = new ArrayList<>();
            for (int r = 0; r < BATCH; r++) {
                rows.add(new SampledSequence(params, 1000L + r));
            }
            for (int s = 0; s < DRAWS / BATCH; s++) {
                for (int id : bench.step(rows)) {
                    counts[id]++;
                }
            }
        }
        return counts;
    }

    /** Excluded tokens never drawn; the kept ones in proportion to p (chi-square, false alarm 1e-6). */
    static void assertDistribution(double[] p, boolean[] kept, long[] counts) {
        double[] expected = new double[V];
        double mass = 0;
        int cells = 0;
        for (int i = 0; i < V; i++) {
            mass += kept[i] ? p[i] : 0;
            cells += kept[i] ? 1 : 0;
        }
        for (int i = 0; i < V; i++) {
            if (!kept[i]) {
                assertEquals(0, counts[i], "excluded token " + i + " was drawn");
            } else {
                expected[i] = p[i] / mass;
            }
        }
        if (cells > 1) {
            double chi = ChiSquare.statistic(counts, expected);
            double pValue = ChiSquare.pValue(chi, cells - 1);
            assertTrue(pValue > FALSE_ALARM, "chi-square " + chi + " on " + (cells - 1) + " degrees of freedom: p = "
                    + pValue + ", counts " + Arrays.toString(counts) + ", expected " + Arrays.toString(expected));
        }
    }

    static boolean[] all() {
        boolean[] kept = new boolean[V];
        Arrays.fill(kept, true);
        return kept;
    }

    @Test
    void chiSquareTailMatchesKnownValues() {
        // Tabulated: P(X >= 3.841) = 0.05 at 1 degree of freedom; P(X >= 21.666) = 0.01 at 9; and
        // exactly exp(-x / 2) at 2, so 1e-6 at x = 2 ln 1e6.
        assertEquals(0.05, ChiSquare.pValue(3.841459, 1), 1e-6);
        assertEquals(0.01, ChiSquare.pValue(21.665994, 9), 1e-6);
        assertEquals(1e-6, ChiSquare.pValue(2 * Math.log(1e6), 2), 1e-12);
    }

    @Test
    void greedyTakesTheFirstMaximumOnBothPaths() {
        float[] tied = {0f, 5f, 1f, 5f, 0f, 0f, 0f, 0f, 0f, 0f};
        try (Bench bench = new Bench(1, tied)) {
            SampledSequence plain = new SampledSequence(SamplingParams.greedy(4), 1);
            assertTrue(plain.state.isPlainGreedy());
            assertEquals(1, bench.step(plain));
            SampledSequence withLogprobs = new SampledSequence(SamplingParams.builder().temperature(0).logprobs(0).build(), 1);
            assertFalse(withLogprobs.state.isPlainGreedy());
            assertEquals(1, bench.step(withLogprobs));
            assertEquals(1, withLogprobs.state.numGenerated());
        }
    }

    @Test
    void greedyReadsNanAndInfinityAsTheSamplerDoesOnBothPaths() {
        float nan = Float.NaN;
        float inf = Float.POSITIVE_INFINITY;
        float[][] rows = {{nan, 1f, 2f, 0f, 0f, 0f, 0f, 0f, 0f, 0f}, {Float.MAX_VALUE, inf, 1f, 0f, 0f, 0f, 0f, 0f, 0f, 0f}};
        int[] expected = {2, 0}; // NaN is -inf; +inf is the largest float, tied with it: the first wins
        for (int r = 0; r < rows.length; r++) {
            try (Bench bench = new Bench(1, rows[r])) {
                assertEquals(expected[r], bench.step(new SampledSequence(SamplingParams.greedy(4), 1)), "argmax path");
                SampledSequence viaSampler = new SampledSequence(SamplingParams.builder().temperature(0).logprobs(0).build(), 1);
                assertEquals(expected[r], bench.step(viaSampler), "sampler path");
            }
        }
    }

    @Test
    void sameSeedSameTokensOtherSeedOtherTokensWhateverTheBatch() {
        SamplingParams params = SamplingParams.builder().temperature(1.0).build();
        SamplingParams other = SamplingParams.builder().temperature(0.3).topK(3).minP(0.1).build();
        try (Bench bench = new Bench(3, LOGITS)) {
            SampledSequence a = new SampledSequence(params, 7);
            int[] alone = new int[200];
            for (int i = 0; i < alone.length; i++) {
                alone[i] = bench.step(a);
            }
            // The same seed as the middle row of a batch whose other rows have other parameters.
            SampledSequence b = new SampledSequence(params, 7);
            SampledSequence c = new SampledSequence(params, 8);
            SampledSequence d = new SampledSequence(other, 7);
            int[] again = new int[200];
            int[] otherSeed = new int[200];
            for (int i = 0; i < again.length; i++) {
                int[] ids = bench.step(List.of(d, b, c));
                again[i] = ids[1];
                otherSeed[i] = ids[2];
            }
            assertArrayEquals(alone, again);
            assertFalse(Arrays.equals(alone, otherSeed));
        }
    }

    @Test
    void temperatureFollowsTheSoftmax() {
        assertDistribution(softmax(LOGITS, 1.0), all(), counts(SamplingParams.builder().temperature(1.0).build()));
        assertDistribution(softmax(LOGITS, 0.5), all(), counts(SamplingParams.builder().temperature(0.5).build()));
        assertDistribution(softmax(LOGITS, 2.5), all(), counts(SamplingParams.builder().temperature(2.5).build()));
    }

    @Test
    void topKKeepsTheKMostLikely() {
        boolean[] kept = new boolean[V];
        kept[0] = kept[1] = kept[2] = true;
        assertDistribution(softmax(LOGITS, 1.0), kept, counts(SamplingParams.builder().topK(3).build()));
    }

    /** The nucleus as docs/sampling.md has it: most likely first, until the mass reaches top_p. */
    static boolean[] nucleus(double[] p, boolean[] candidates, double topP) {
        double mass = 0;
        for (int i = 0; i < V; i++) {
            mass += candidates[i] ? p[i] : 0;
        }
        boolean[] kept = new boolean[V];
        double before = 0;
        for (int i = 0; i < V; i++) { // LOGITS are in descending order
            if (candidates[i] && before < topP * mass) {
                kept[i] = true;
                before += p[i];
            }
        }
        return kept;
    }

    @Test
    void topPKeepsTheNucleus() {
        double[] p = softmax(LOGITS, 1.0);
        boolean[] kept = nucleus(p, all(), 0.6);
        assertTrue(kept[1] && !kept[V - 1]);
        assertDistribution(p, kept, counts(SamplingParams.builder().topP(0.6).build()));
    }

    @Test
    void minPDropsTokensFarBelowTheMostLikely() {
        double[] p = softmax(LOGITS, 1.0);
        boolean[] kept = new boolean[V];
        for (int i = 0; i < V; i++) {
            kept[i] = p[i] >= 0.2 * p[0];
        }
        assertTrue(kept[3] && !kept[5]);
        assertDistribution(p, kept, counts(SamplingParams.builder().minP(0.2).build()));
    }

    @Test
    void truncationsCompose() {
        // min-p 0.1 at temperature 0.7, then top-k 5, then top-p 0.8 of what is left.
        double[] p = softmax(LOGITS, 0.7);
        boolean[] candidates = new boolean[V];
        for (int i = 0; i < 5; i++) {
            candidates[i] = p[i] >= 0.1 * p[0];
        }
        boolean[] kept = nucleus(p, candidates, 0.8);
        assertDistribution(p, kept, counts(SamplingParams.builder().temperature(0.7).minP(0.1).topK(5).topP(0.8)
                .build()));
    }

    @Test
    void topKKeepsTiesOfTheKthValue() {
        float[] tied = {4f, 3f, 3f, 3f, 0f, 0f, 0f, 0f, 0f, 0f};
        try (Bench bench = new Bench(1, tied)) {
            SampledSequence s = new SampledSequence(SamplingParams.builder().topK(2).build(), 99);
            boolean[] seen = new boolean[V];
            for (int i = 0; i < 5000; i++) {
                seen[bench.step(s)] = true;
            }
            assertTrue(seen[0] && seen[1] && seen[2] && seen[3]);
            assertFalse(seen[4]);
        }
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        // Prompt holds tokens 0 and 9: 3.0 / 2 = 1.5 falls below token 2 (2.0); -1.0 * 2 = -2.0.
        SamplingParams params = SamplingParams.builder().temperature(0).repetitionPenalty(2.0).build();
        try (Bench bench = new Bench(1, LOGITS)) {
            SampledSequence s = new SampledSequence(params, 0, new int[] {0, 9}, new int[0]);
            assertEquals(1, bench.step(s), "2.5 is the largest after the penalty");
            // The output token 1 is penalised too now: 2.5 / 2 = 1.25 < 2.0.
            assertEquals(2, bench.step(s));
        }
    }

    @Test
    void frequencyAndPresencePenaltiesCountTheOutput() {
        try (Bench bench = new Bench(1, LOGITS)) {
            SampledSequence s = new SampledSequence(SamplingParams.builder().temperature(0).frequencyPenalty(0.3).build(), 0,
                    new int[] {1, 1, 1}, new int[0]);
            int[] tokens = new int[6];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = bench.step(s);
            }
            // Prompt tokens are not penalised; token 0 loses 0.3 per use: 3.0, 2.7 > 2.5, then 2.4 < 2.5 ...
            assertArrayEquals(new int[] {0, 0, 1, 0, 1, 0}, tokens);

            SampledSequence q = new SampledSequence(SamplingParams.builder().temperature(0).presencePenalty(0.6).build(), 0);
            int[] seq = {bench.step(q), bench.step(q), bench.step(q), bench.step(q)};
            // 0: 3.0 -> 2.4 once used; 1: 2.5 -> 1.9; 2: 2.0 -> 1.4; then 0 again (2.4 is the largest left).
            assertArrayEquals(new int[] {0, 1, 0, 0}, seq);
        }
    }

    @Test
    void minTokensSuppressesEndOfSequence() {
        SamplingParams params = SamplingParams.builder().temperature(0).minTokens(2).maxTokens(4).build();
        try (Bench bench = new Bench(1, LOGITS)) {
            // Id 77 is outside the vocabulary: a stop id that can never be drawn is simply not masked.
            SampledSequence s = new SampledSequence(params, 0, new int[0], new int[] {0, 77});
            assertFalse(s.state.isPlainGreedy());
            assertEquals(1, bench.step(s));
            assertEquals(1, bench.step(s));
            assertEquals(0, bench.step(s), "suppressed only until min_tokens are generated");
        }
    }

    @Test
    void logprobsAreThoseOfTheRawLogitsInDoublePrecision() {
        double[] p = softmax(LOGITS, 1.0);
        SamplingParams params = SamplingParams.builder().temperature(5.0).topK(2).logprobs(3).build();
        try (Bench bench = new Bench(1, LOGITS)) {
            SampledSequence s = new SampledSequence(params, 3);
            int token = bench.step(s);
            SampledLogprobs lp = bench.out.logprobs(0);
            assertEquals(token, lp.tokenId());
            assertEquals(Math.log(p[token]), lp.logprob(), 1e-6);
            assertEquals(token + 1, lp.rank());
            assertArrayEquals(new int[] {0, 1, 2}, lp.topIds());
            for (int j = 0; j < lp.topIds().length; j++) {
                assertEquals(Math.log(p[lp.topIds()[j]]), lp.topLogprobs()[j], 1e-6);
            }
        }
    }

    @Test
    void everyTruncationKeepsAtLeastOneToken() {
        for (Consumer<SamplingParams.Builder> change : List.<Consumer<SamplingParams.Builder>>of(
                b -> b.topP(1e-9), b -> b.topK(1), b -> b.minP(1.0))) {
            SamplingParams.Builder b = SamplingParams.builder();
            change.accept(b);
            try (Bench bench = new Bench(1, LOGITS)) {
                SampledSequence s = new SampledSequence(b.build(), 5);
                for (int i = 0; i < 100; i++) {
                    assertEquals(0, bench.step(s));
                }
            }
        }
    }

    @Test
    void penaltyRowsTakenBackAndRebuiltGiveTheSameTokens() {
        SamplingParams params = SamplingParams.builder().temperature(1.2).frequencyPenalty(0.7).presencePenalty(0.4)
                .repetitionPenalty(1.3).build();
        int steps = 40;
        int[][] alone = new int[3][steps];
        try (Bench bench = new Bench(3, LOGITS)) {
            for (int s = 0; s < 3; s++) {
                SampledSequence row = new SampledSequence(params, 50 + s, new int[] {s, 4, 4}, new int[0]);
                for (int i = 0; i < steps; i++) {
                    alone[s][i] = bench.step(row);
                }
            }
        }
        // Two penalty rows for three sequences, two of them sampled each step: every step gives a
        // row to a sequence that lost it, which is rebuilt from its tokens.
        try (Bench bench = new Bench(2, LOGITS)) {
            List<SampledSequence> rows = new ArrayList<>();
            for (int s = 0; s < 3; s++) {
                rows.add(new SampledSequence(params, 50 + s, new int[] {s, 4, 4}, new int[0]));
            }
            int[] done = new int[3];
            for (int i = 0; done[0] + done[1] + done[2] < 3 * steps; i++) {
                int skip = i % 3;
                List<SampledSequence> step = new ArrayList<>();
                List<Integer> which = new ArrayList<>();
                for (int s = 0; s < 3; s++) {
                    if (s != skip && done[s] < steps) {
                        step.add(rows.get(s));
                        which.add(s);
                    }
                }
                int[] ids = bench.step(step);
                for (int j = 0; j < ids.length; j++) {
                    int s = which.get(j);
                    assertEquals(alone[s][done[s]], ids[j], "sequence " + s + " token " + done[s]);
                    done[s]++;
                }
            }
        }
    }
}
