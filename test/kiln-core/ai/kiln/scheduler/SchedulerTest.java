package ai.kiln.scheduler;

import static ai.kiln.scheduler.TestSequences.range;
import static ai.kiln.scheduler.TestSequences.seq;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.model.ForwardBatch;
import ai.kiln.sampling.SamplerOutput;
import ai.kiln.api.SamplingParams;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The scheduler step by step, on a simulated model ({@link FakeModel}) that checks every read of
 * the KV cache: batch layout, chunked prefill, decodes during a long prefill, preemption and
 * recompute, stop conditions, parallel samples sharing prompt blocks, rejection.
 */
class SchedulerTest {

    static final int BLOCK = 4;
    static final int EOS = 2;

    private Scheduler scheduler;
    private KvCacheManager kv;
    private FakeModel model;
    private final List<Sequence> all = new ArrayList<>();

    private void setUp(int numBlocks, int budget, int maxSeqs, boolean prefixCaching) {
        kv = new KvCacheManager(numBlocks, BLOCK, prefixCaching);
        scheduler = new Scheduler(new SchedulerConfig(budget, maxSeqs, 64), kv, new int[] {EOS});
        model = new FakeModel(numBlocks, BLOCK, maxSeqs);
    }

    private Sequence add(Sequence seq) {
        scheduler.add(seq);
        all.add(seq);
        return seq;
    }

    /** One step on the fake model; the invariants must hold before and after. */
    private StepPlan step() {
        assertNull(scheduler.checkInvariants());
        StepPlan plan = scheduler.schedule();
        if (!plan.isEmpty()) {
            scheduler.update(plan, model.run(plan));
        }
        assertNull(scheduler.checkInvariants());
        return plan;
    }

    private void runToEnd() {
        for (int i = 0; i < 1000 && scheduler.hasWork(); i++) {
            step();
        }
        assertFalse(scheduler.hasWork(), "the scheduler still has work after 1000 steps");
    }

    @AfterEach
    void everythingFinishedAndThePoolIsWhole() {
        if (scheduler == null) {
            return;
        }
        for (Sequence seq : all) {
            scheduler.finish(seq, FinishCause.ABORT, "test over");
        }
        assertEquals(kv.pool().numUsableBlocks(), kv.pool().numFreeBlocks());
        assertNull(kv.checkConsistency(List.of()));
    }

    @Test
    void chunkedPrefillLaysOutTheBatch() {
        setUp(20, 8, 4, true);
        Sequence a = add(seq(1, range(100, 120), 3));

        StepPlan p = step();
        ForwardBatch b = p.batch();
        assertEquals(8, b.numTokens());
        assertEquals(1, b.numSeqs());
        assertArrayEquals(range(100, 108), Arrays.copyOf(b.tokenIds(), 8));
        assertArrayEquals(range(0, 8), Arrays.copyOf(b.positions(), 8));
        assertArrayEquals(range(4, 12), Arrays.copyOf(b.slotMapping(), 8), "blocks 1 and 2");
        assertArrayEquals(new int[] {0, 8}, Arrays.copyOf(b.queryStart(), 2));
        assertEquals(8, b.seqLens()[0]);
        assertArrayEquals(new int[] {1, 2, 0, 0}, Arrays.copyOf(b.blockTables(), 4));
        assertEquals(16, b.maxBlocksPerSeq(), "64 tokens of context in blocks of 4");
        assertEquals(0, b.numLogitsRows(), "a prompt chunk that is not the last samples nothing");
        assertEquals(8, p.numPrefillTokens());

        b = step().batch();
        assertArrayEquals(range(8, 16), Arrays.copyOf(b.positions(), 8));
        assertArrayEquals(range(12, 20), Arrays.copyOf(b.slotMapping(), 8), "blocks 3 and 4");
        assertEquals(0, b.numLogitsRows());

        b = step().batch();
        assertEquals(4, b.numTokens());
        assertArrayEquals(range(20, 24), Arrays.copyOf(b.slotMapping(), 4), "block 5");
        assertEquals(1, b.numLogitsRows());
        assertEquals(3, b.logitsRows()[0]);
        assertEquals(21, a.numTokens());

        p = step(); // decode: position 20 opens block 6
        b = p.batch();
        assertEquals(1, b.numTokens());
        assertEquals(20, b.positions()[0]);
        assertEquals(24, b.slotMapping()[0]);
        assertEquals(21, b.seqLens()[0]);
        assertEquals(0, p.numPrefillTokens());
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 0}, Arrays.copyOf(b.blockTables(), 7));

        runToEnd();
        assertEquals(FinishCause.LENGTH, a.finishCause());
        assertArrayEquals(FakeModel.alone(range(100, 120), 3), a.outputTokenIds());
    }

    @Test
    void decodesKeepFlowingDuringALongPrefill() {
        setUp(40, 8, 4, true);
        Sequence a = add(seq(1, range(0, 3), 10));
        Sequence b = add(seq(2, range(10, 40), 2));
        StepPlan p = step();
        assertEquals(2, p.numSeqs());
        assertEquals(3, p.numScheduled(0));
        assertEquals(5, p.numScheduled(1));
        int[] chunks = new int[4];
        for (int i = 0; i < 4; i++) {
            p = step();
            assertSame(a, p.seq(0));
            assertEquals(1, p.numScheduled(0), "a decodes every step");
            chunks[i] = p.numScheduled(1);
            assertEquals(i < 3 ? 1 : 2, p.numSampling());
        }
        assertArrayEquals(new int[] {7, 7, 7, 4}, chunks, "b's prompt takes what the decode leaves");
        runToEnd();
        assertArrayEquals(FakeModel.alone(range(0, 3), 10), a.outputTokenIds());
        assertArrayEquals(FakeModel.alone(range(10, 40), 2), b.outputTokenIds());
    }

    @Test
    void preemptsTheLatestAdmittedAndRecomputesIt() {
        // 6 usable blocks of 4: two sequences of 8 + 12 tokens need 5 blocks each at the end.
        setUp(7, 64, 4, true);
        Sequence a = add(seq(1, range(0, 8), 12));
        Sequence b = add(seq(2, range(20, 28), 12));
        step();
        assertArrayEquals(new int[] {1, 2}, a.blocks().toArray());
        assertArrayEquals(new int[] {3, 4}, b.blocks().toArray());
        boolean sawPreemption = false;
        while (scheduler.hasWork()) {
            int running = scheduler.numRunning();
            StepPlan p = step();
            if (scheduler.numPreemptions() > 0 && !sawPreemption) {
                sawPreemption = true;
                assertEquals(1, b.numPreemptions(), "the most recently admitted is preempted");
                assertEquals(0, a.numPreemptions());
                assertEquals(Sequence.Status.WAITING, b.status());
                assertEquals(0, b.blocks().size());
                assertTrue(running == 2 && p.numSeqs() == 1, "no admission in a step that preempted");
            }
        }
        assertTrue(sawPreemption);
        assertEquals(FinishCause.LENGTH, a.finishCause());
        assertEquals(FinishCause.LENGTH, b.finishCause());
        // Recompute continues exactly where it stopped.
        assertArrayEquals(FakeModel.alone(range(0, 8), 12), a.outputTokenIds());
        assertArrayEquals(FakeModel.alone(range(20, 28), 12), b.outputTokenIds());
        // The prefix cache gave b back the first of its blocks; a's growth evicted the others (LRU, tail first).
        assertEquals(4, kv.prefixCacheHits());
    }

    @Test
    void sequenceCapAndBudgetLimitAdmission() {
        setUp(40, 16, 2, true);
        Sequence a = add(seq(1, range(0, 4), 5));
        Sequence b = add(seq(2, range(10, 14), 5));
        Sequence c = add(seq(3, range(20, 24), 5));
        StepPlan p = step();
        assertEquals(2, p.numSeqs());
        assertEquals(Sequence.Status.WAITING, c.status());
        assertEquals(1, scheduler.numWaiting());
        runToEnd();
        for (Sequence s : List.of(a, b, c)) {
            assertEquals(5, s.numOutputTokens());
        }
    }

    @Test
    void stopConditions() {
        setUp(40, 64, 8, true);
        int[] prompt = range(10, 15);
        int first = FakeModel.next(prompt, prompt.length);
        SamplingParams base = SamplingParams.builder().temperature(0).maxTokens(5).build();
        // The fake model's first token, declared end-of-sequence for the test by stop_token_ids.
        Sequence stopId = add(seq(1, prompt, base.toBuilder().stopTokenIds(List.of(first)).build(), null));
        Sequence minTokens = add(seq(2, prompt, base.toBuilder().stopTokenIds(List.of(first)).minTokens(2).build(), null));
        Sequence length = add(seq(3, prompt, base, null));
        runToEnd();
        assertEquals(FinishCause.STOP, stopId.finishCause());
        assertEquals(Integer.toString(first), stopId.stopReason());
        assertArrayEquals(new int[] {first}, stopId.outputTokenIds(), "the stop token is kept in the ids");
        assertEquals(FinishCause.LENGTH, minTokens.finishCause(), "min_tokens outweighs the stop id");
        assertEquals(FinishCause.LENGTH, length.finishCause());
        assertEquals(5, length.numOutputTokens());
    }

    @Test
    void endOfSequenceStopsUnlessIgnored() {
        setUp(40, 64, 8, true);
        Scheduler eosFirst = new Scheduler(new SchedulerConfig(64, 8, 64), kv,
                new int[] {FakeModel.next(range(10, 15), 5)});
        scheduler = eosFirst;
        Sequence stops = add(seq(1, range(10, 15), 5));
        Sequence ignores = add(seq(2, range(10, 15), SamplingParams.builder().temperature(0).maxTokens(5)
                .ignoreEos(true).build(), null));
        runToEnd();
        assertEquals(FinishCause.STOP, stops.finishCause());
        assertNull(stops.stopReason());
        assertEquals(1, stops.numOutputTokens());
        assertEquals(FinishCause.LENGTH, ignores.finishCause());
        assertEquals(5, ignores.numOutputTokens());
    }

    @Test
    void contextLengthEndsASequence() {
        setUp(40, 64, 8, true);
        Sequence s = add(seq(1, range(0, 60), 4)); // 60 + 4 = the whole context of 64
        runToEnd();
        assertEquals(FinishCause.LENGTH, s.finishCause());
        assertEquals(64, s.numTokens());
    }

    @Test
    void parallelSamplesShareThePromptBlocks() {
        setUp(40, 64, 8, false); // sharing by fork, without the prefix cache
        int[] prompt = range(0, 10); // two full blocks and a partial one
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(3).n(3).build();
        Sequence parent = add(seq(1, prompt, params, null));
        Sequence c1 = add(seq(2, prompt, params, parent));
        Sequence c2 = add(seq(3, prompt, params, parent));
        assertEquals(Sequence.Status.PARKED, c1.status());
        assertEquals(3, scheduler.numWaiting());
        StepPlan p = step();
        assertEquals(1, p.numSeqs(), "the siblings wait for the prompt");
        assertEquals(Sequence.Status.WAITING, c1.status());
        p = step();
        // The siblings compute only the prompt's partial last block, sharing blocks 1 and 2.
        assertEquals(3, p.numSeqs());
        assertEquals(2, p.numScheduled(1));
        assertEquals(2, p.numScheduled(2));
        assertEquals(3, kv.pool().refCount(parent.blocks().get(0)));
        assertEquals(3, kv.pool().refCount(parent.blocks().get(1)));
        assertEquals(1, kv.pool().refCount(c1.blocks().get(2)));
        assertEquals(8, c1.numCachedPromptTokens());
        runToEnd();
        for (Sequence s : List.of(parent, c1, c2)) {
            assertArrayEquals(FakeModel.alone(prompt, 3), s.outputTokenIds());
        }
    }

    @Test
    void abortFreesBlocksWhereverTheSequenceIs() {
        setUp(40, 64, 1, true);
        Sequence running = add(seq(1, range(0, 9), 20));
        Sequence waiting = add(seq(2, range(50, 59), 20));
        SamplingParams two = SamplingParams.builder().temperature(0).maxTokens(4).n(2).build();
        Sequence parent = add(seq(3, range(70, 79), two, null));
        Sequence parked = add(seq(4, range(70, 79), two, parent));
        step();
        assertEquals(3, running.blocks().size());
        scheduler.finish(running, FinishCause.ABORT, "cancelled");
        scheduler.finish(waiting, FinishCause.ABORT, "cancelled");
        scheduler.finish(parked, FinishCause.ABORT, "cancelled");
        assertEquals(0, running.blocks().size());
        assertEquals("cancelled", running.stopReason());
        assertEquals(1, scheduler.numWaiting());
        assertNull(scheduler.checkInvariants());
        runToEnd();
        assertEquals(FinishCause.LENGTH, parent.finishCause());
        assertEquals(FinishCause.ABORT, parked.finishCause());
    }

    @Test
    void requestsThatCanNeverFitAreRejectedWithTheNumbers() {
        setUp(9, 64, 4, true); // 8 usable blocks = 32 tokens
        AdmissionException context = assertThrows(AdmissionException.class,
                () -> scheduler.admissionCheck(40, 30));
        assertEquals("the prompt (40 tokens) + max_tokens (30) = 70 tokens exceeds the model's context of 64 tokens",
                context.getMessage());
        AdmissionException pool = assertThrows(AdmissionException.class,
                () -> scheduler.admissionCheck(30, 10));
        assertEquals("the prompt (30 tokens) + max_tokens (10) needs 10 KV-cache blocks of 4 tokens, but the cache has"
                + " only 8 (32 tokens)", pool.getMessage());
        assertThrows(AdmissionException.class, () -> scheduler.admissionCheck(64, null));
        assertEquals(2, scheduler.admissionCheck(31, null), "null max_tokens: what the context and the cache leave");
        assertEquals(13, scheduler.admissionCheck(20, 13), "20 + 13 - 1 = 32 slots: the last token needs none");
        assertThrows(AdmissionException.class, () -> scheduler.admissionCheck(20, 14));
        AdmissionException prompt = assertThrows(AdmissionException.class,
                () -> scheduler.admissionCheck(40, null));
        assertEquals("the prompt (40 tokens) needs 10 KV-cache blocks of 4 tokens, but the cache has only 8"
                + " (32 tokens)", prompt.getMessage());
        assertThrows(AdmissionException.class, () -> scheduler.add(seq(1, range(0, 30), 10)));
    }

    @Test
    void emptyStepWhenNothingWaits() {
        setUp(9, 64, 4, true);
        assertTrue(scheduler.schedule().isEmpty());
        assertNull(scheduler.schedule().batch());
    }

    /** Unused output object for steps built by hand. */
    static SamplerOutput none() {
        return new SamplerOutput(1);
    }
}
