package ai.kiln.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.api.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/**
 * Random workloads on tiny pools: arrivals over time, prompt lengths, shared prefixes, n > 1,
 * cancellations, small budgets and caps. At every step the scheduler's invariants hold (reference
 * counts match the block tables, no block that will be written is shared) and every sequence
 * reads exactly its own tokens from the simulated cache; in the end every request has finished
 * or been cancelled, each finished one with exactly the tokens it generates alone, and the pool
 * is whole.
 */
class SchedulerPropertiesTest {

    static final int MAX_MODEL_LEN = 48;
    static final int EOS = 2;

    /**
     * @param arrival    the step it is submitted at
     * @param prefix     which of four shared prefixes its prompt starts with (-1: none)
     * @param promptLen  prompt tokens
     * @param maxTokens  tokens to generate
     * @param cancelAt   the step it is cancelled at (-1: never)
     * @param n          completions
     */
    record Req(int arrival, int prefix, int promptLen, int maxTokens, int cancelAt, int n) {
    }

    @Provide
    Arbitrary<List<Req>> requests() {
        Arbitrary<Req> req = Combinators.combine(Arbitraries.integers().between(0, 12),
                Arbitraries.integers().between(-1, 3), Arbitraries.integers().between(1, 40),
                Arbitraries.integers().between(1, 16),
                Arbitraries.integers().between(-1, 30).map(c -> c < 15 ? -1 : c - 10),
                Arbitraries.integers().between(1, 3)).as(Req::new);
        return req.list().ofMinSize(1).ofMaxSize(10);
    }

    @Property(tries = 1000)
    void everyRequestFinishesOrIsCancelledWithConsistentBlocks(
            @ForAll @IntRange(min = 1, max = 8) int blockSize,
            @ForAll @IntRange(min = 2, max = 24) int numBlocks,
            @ForAll @IntRange(min = 1, max = 40) int budget,
            @ForAll @IntRange(min = 1, max = 6) int maxSeqs,
            @ForAll boolean prefixCaching,
            @ForAll("requests") List<Req> requests) {
        KvCacheManager kv = new KvCacheManager(numBlocks, blockSize, prefixCaching);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(budget, maxSeqs, MAX_MODEL_LEN), kv, new int[] {EOS});
        FakeModel model = new FakeModel(numBlocks, blockSize, maxSeqs);
        int usable = numBlocks - 1;

        List<Sequence[]> accepted = new ArrayList<>();
        List<Req> acceptedReqs = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        long nextId = 1;
        int lastArrival = requests.stream().mapToInt(Req::arrival).max().orElse(0);
        int step = 0;
        for (; step < 20_000 && (step <= lastArrival || scheduler.hasWork()); step++) {
            for (int i = 0; i < requests.size(); i++) {
                Req r = requests.get(i);
                if (r.arrival() != step) {
                    continue;
                }
                int[] prompt = prompt(r, i);
                try {
                    scheduler.admissionCheck(prompt.length, r.maxTokens());
                } catch (AdmissionException e) {
                    boolean tooLong = prompt.length + r.maxTokens() > MAX_MODEL_LEN;
                    boolean tooBig = kv.blocksFor(prompt.length + r.maxTokens() - 1) > usable;
                    assertTrue(tooLong || tooBig, "rejected a request that fits alone: " + e.getMessage());
                    continue;
                }
                SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(r.maxTokens()).n(r.n()).build();
                Sequence[] seqs = new Sequence[r.n()];
                for (int k = 0; k < r.n(); k++) {
                    seqs[k] = TestSequences.seq(nextId++, prompt, params, k == 0 ? null : seqs[0]);
                    scheduler.add(seqs[k]);
                }
                accepted.add(seqs);
                acceptedReqs.add(r);
                prompts.add(prompt);
            }
            for (int i = 0; i < accepted.size(); i++) {
                if (acceptedReqs.get(i).cancelAt() == step) {
                    for (Sequence seq : accepted.get(i)) {
                        scheduler.finish(seq, FinishCause.ABORT, "cancelled");
                    }
                }
            }
            assertNull(scheduler.checkInvariants());
            StepPlan plan = scheduler.schedule();
            if (!plan.isEmpty()) {
                assertTrue(plan.numTokens() <= budget, "step of " + plan.numTokens() + " tokens over the budget");
                assertTrue(plan.numSeqs() <= maxSeqs);
                scheduler.update(plan, model.run(plan));
            }
            assertNull(scheduler.checkInvariants());
        }
        assertFalse(scheduler.hasWork(), "work left after " + step + " steps");
        for (int i = 0; i < accepted.size(); i++) {
            Req r = acceptedReqs.get(i);
            for (Sequence seq : accepted.get(i)) {
                assertTrue(seq.isFinished(), seq + " never finished");
                if (seq.finishCause() == FinishCause.ABORT) {
                    assertTrue(r.cancelAt() >= 0, seq + " was aborted but never cancelled");
                } else {
                    assertEquals(FinishCause.LENGTH, seq.finishCause());
                    assertArrayEquals(FakeModel.alone(prompts.get(i), r.maxTokens()), seq.outputTokenIds(),
                            seq + ": output differs from the sequence run alone");
                }
            }
        }
        assertEquals(usable, kv.pool().numFreeBlocks(), "blocks leaked");
        assertNull(kv.checkConsistency(List.of()));
    }

    /** The prompt: a shared prefix's first tokens (if any), then tokens unique to the request. */
    private static int[] prompt(Req r, int index) {
        int[] prompt = new int[r.promptLen()];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = r.prefix() >= 0 && i < 24 ? 1000 * (r.prefix() + 1) + i : 100_000 + 100 * index + i;
        }
        return prompt;
    }
}
