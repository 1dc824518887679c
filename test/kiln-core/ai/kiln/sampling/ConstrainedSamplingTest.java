package ai.kiln.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.HostTensors;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.grammar.CompiledGrammar;
import ai.kiln.grammar.GrammarMatcher;
import ai.kiln.grammar.Grammars;
import ai.kiln.grammar.TokenVocabulary;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The sampler with grammar-constrained rows on the CPU backend: a masked id has probability 0 in
 * the argmax path (the choice is the argmax over the allowed ids) and in the sampled path (over
 * 4000 draws among the allowed ones, every allowed id drawn, none other, with log-probabilities
 * of the constrained distribution), while an unconstrained row of the same batch is left alone.
 */
class ConstrainedSamplingTest {

    static final int V = 40;
    static final String[] TOKENS = {"a", "b", "c", "ab", "ba", "abc", "x", "y", "z", "{", "}", "\"", "0", "1", "12"};

    static CpuBackend backend;

    @BeforeAll
    static void open() {
        backend = new CpuBackend(2, 64L << 20);
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    /** Ids 0..14 spell TOKENS, 15 is the end of sequence, the rest have no bytes. */
    static CompiledGrammar grammar(String pattern) {
        byte[][] bytes = new byte[V][];
        for (int i = 0; i < TOKENS.length; i++) {
            bytes[i] = TOKENS[i].getBytes(StandardCharsets.UTF_8);
        }
        return new CompiledGrammar(Grammars.regex(pattern), new TokenVocabulary(bytes, new int[] {15}));
    }

    static float[] randomLogits(Random r, int rows) {
        float[] logits = new float[rows * V];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (r.nextGaussian() * 2);
        }
        return logits;
    }

    static Tensor upload(float[] values, int rows) {
        Tensor t = backend.allocate(DType.F32, rows, V);
        Tensor host = HostTensors.floats(values, rows, V);
        backend.upload(t, host);
        HostTensors.release(host);
        return t;
    }

    static List<Integer> allowed(GrammarMatcher m) {
        int[] words = new int[m.maskWords()];
        m.fillMask(words, 0);
        List<Integer> ids = new ArrayList<>();
        for (int id = 0; id < V; id++) {
            if ((words[id >>> 5] >>> (id & 31) & 1) != 0) {
                ids.add(id);
            }
        }
        return ids;
    }

    @Test
    void greedyChoosesTheArgmaxOfTheAllowedIdsAndLeavesOtherRowsAlone() {
        Random r = new Random(3);
        try (BackendSampler sampler = new BackendSampler(backend, 2, V)) {
            for (int trial = 0; trial < 50; trial++) {
                GrammarMatcher m = grammar("(ab|c)+z").newMatcher(true);
                float[] logits = randomLogits(r, 2);
                Tensor t = upload(logits, 2);
                SamplingBatch batch = new SamplingBatch(2);
                SequenceSampling constrained = new SequenceSampling(SamplerSettings.GREEDY, 1, new int[0], m);
                SequenceSampling free = new SequenceSampling(SamplerSettings.GREEDY, 1, new int[0]);
                int[] prompt = {0};
                batch.add(constrained, prompt, 1, 1);
                batch.add(free, prompt, 1, 1);
                List<Integer> allowed = allowed(m);
                SamplerOutput out = new SamplerOutput(2);
                sampler.sample(t, batch, out);
                int best = allowed.get(0);
                for (int id : allowed) {
                    best = logits[id] > logits[best] ? id : best;
                }
                assertEquals(best, out.tokenId(0), "the argmax among " + allowed);
                int bestFree = 0;
                for (int id = 0; id < V; id++) {
                    bestFree = logits[V + id] > logits[V + bestFree] ? id : bestFree;
                }
                assertEquals(bestFree, out.tokenId(1), "the unconstrained row");
                backend.free(t);
            }
        }
    }

    @Test
    void sampledDrawsComeFromTheAllowedIdsOnly() {
        Random r = new Random(5);
        float[] row = new float[V];
        for (int id = 0; id < V; id++) {
            row[id] = id % 3 == 0 ? 1.0f : 0.5f; // flat enough that every allowed id is drawn
        }
        SamplerSettings sampled = new SamplerSettings(1.0, 1, 0, 0, 1, 0, 0, 0, 5, false);
        int[] counts = new int[V];
        List<Integer> allowed = null;
        try (BackendSampler sampler = new BackendSampler(backend, 1, V)) {
            for (int draw = 0; draw < 4000; draw++) {
                GrammarMatcher m = grammar("[abc]+0?").newMatcher(true);
                allowed = allowed(m);
                Tensor t = upload(row, 1);
                SamplingBatch batch = new SamplingBatch(1);
                batch.add(new SequenceSampling(sampled, r.nextLong(), new int[0], m), new int[] {0}, 1, 1);
                SamplerOutput out = new SamplerOutput(1);
                sampler.sample(t, batch, out);
                counts[out.tokenId(0)]++;
                SampledLogprobs lp = out.logprobs(0);
                for (int id : lp.topIds()) {
                    assertTrue(allowed.contains(id), "a masked id among the top log-probabilities: " + id);
                }
                assertTrue(lp.logprob() > -5, "the chosen id's log-probability under the constrained distribution");
                backend.free(t);
            }
        }
        for (int id = 0; id < V; id++) {
            if (allowed.contains(id)) {
                assertTrue(counts[id] > 0, "allowed id " + id + " never drawn");
            } else {
                assertEquals(0, counts[id], "masked id " + id + " drawn");
            }
        }
        assertEquals(List.of(0, 1, 2, 3, 4, 5), allowed, "a, b, c, ab, ba, abc start the output");
    }
}
