package ai.kiln.scheduler;

import ai.kiln.kvcache.BlockTable;
import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.sampling.SamplerOutput;
import ai.kiln.sampling.TokenConstraint;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Continuous batching with chunked prefill and recompute preemption (vLLM v1's scheduler, FCFS).
 * Each step has a token budget and a sequence cap. Running sequences come first, in the order
 * they were admitted: each gets its next tokens (one when decoding, a chunk of its prompt while
 * prefilling). Then, if no one was preempted, waiting sequences are admitted in arrival order,
 * each first taking its longest cached prefix, while budget, cap and blocks last.
 *
 * <p>When a running sequence needs a block and none is free, the most recently admitted running
 * sequence is preempted: its blocks are freed and it goes back to the front of the waiting queue,
 * to recompute its prompt and output so far (as its new prompt; the prefix cache usually holds
 * most of it). A sequence that fits the cache alone is thus never starved or failed; one that
 * cannot is rejected by {@link #admissionCheck} before it is added.
 *
 * <p>Not thread-safe: the engine loop calls everything.
 */
public final class Scheduler {

    private final SchedulerConfig config;
    private final KvCacheManager kv;
    private final int blockSize;
    private final int[] eosTokenIds;
    private final ArrayList<Sequence> running = new ArrayList<>();
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    // Two plans, used in turn: a plan stays valid through the next schedule(), so that the engine
    // can hand out one step's outputs while the next step runs.
    private final StepPlan[] plans = new StepPlan[2];
    private int nextPlan;
    private int numParked;
    private long numPreemptions;

    /**
     * @param config      limits
     * @param kv          the block manager
     * @param eosTokenIds ids that end a sequence unless it ignores end-of-sequence
     */
    public Scheduler(SchedulerConfig config, KvCacheManager kv, int[] eosTokenIds) {
        this.config = config;
        this.kv = kv;
        this.blockSize = kv.blockSize();
        this.eosTokenIds = eosTokenIds.clone();
        for (int i = 0; i < plans.length; i++) {
            plans[i] = new StepPlan(config.maxBatchedTokens(), config.maxRunningSeqs(), maxBlocksPerSeq());
        }
    }

    public SchedulerConfig config() {
        return config;
    }

    public KvCacheManager kvCache() {
        return kv;
    }

    /** The block-table row length: blocks of the longest sequence. */
    public int maxBlocksPerSeq() {
        return kv.blocksFor(config.maxModelLen());
    }

    /**
     * Checks that a request with this prompt length can ever run here and returns its resolved
     * max_tokens (null: what the context leaves). Safe from any thread (reads only fixed sizes).
     *
     * @throws AdmissionException naming the numbers when it cannot
     */
    public int admissionCheck(int promptLength, Integer maxTokens) {
        int maxLen = config.maxModelLen();
        if (promptLength < 1) {
            throw new AdmissionException("the prompt is empty: at least one token is needed");
        }
        if (promptLength >= maxLen) {
            throw new AdmissionException("the prompt has " + promptLength + " tokens; the model's context is "
                    + maxLen + " tokens, which leaves no room to generate");
        }
        if (maxTokens != null && (long) promptLength + maxTokens > maxLen) {
            throw new AdmissionException("the prompt (" + promptLength + " tokens) + max_tokens (" + maxTokens
                    + ") = " + ((long) promptLength + maxTokens) + " tokens exceeds the model's context of " + maxLen
                    + " tokens");
        }
        int usable = kv.pool().numUsableBlocks();
        long capacity = (long) usable * blockSize;
        if (promptLength > capacity) {
            throw new AdmissionException("the prompt (" + promptLength + " tokens) needs "
                    + kv.blocksFor(promptLength) + " KV-cache blocks of " + blockSize + " tokens, but the cache has only "
                    + usable + " (" + capacity + " tokens)");
        }
        // null: as many as the context and the cache leave (the last token needs no slot).
        int resolved = maxTokens != null ? maxTokens : (int) Math.min(maxLen - promptLength, capacity - promptLength + 1);
        // The last generated token is never fed back, so it needs no slot.
        int needed = kv.blocksFor(promptLength + resolved - 1);
        if (needed > usable) {
            throw new AdmissionException("the prompt (" + promptLength + " tokens) + max_tokens (" + resolved
                    + ") needs " + needed + " KV-cache blocks of " + blockSize + " tokens, but the cache has only "
                    + usable + " (" + (long) usable * blockSize + " tokens)");
        }
        return resolved;
    }

    /**
     * Queues a new sequence. A sequence with a fork parent waits parked until the parent has
     * computed the prompt, then shares its full prompt blocks.
     */
    public void add(Sequence seq) {
        if (seq.status() != Sequence.Status.WAITING || seq.numComputedTokens() != 0) {
            throw new IllegalStateException("only new sequences can be added: " + seq);
        }
        admissionCheck(seq.numPromptTokens(), seq.maxTokens());
        Sequence parent = seq.forkParent();
        if (parent != null && parent.status() != Sequence.Status.FINISHED
                && parent.numComputedTokens() < parent.numPromptTokens()) {
            seq.setStatus(Sequence.Status.PARKED);
            parent.parked().add(seq);
            numParked++;
        } else {
            waiting.addLast(seq);
        }
    }

    public boolean hasWork() {
        return !running.isEmpty() || !waiting.isEmpty() || numParked > 0;
    }

    public int numRunning() {
        return running.size();
    }

    /** Sequences not running: waiting for admission or parked behind their fork parent. */
    public int numWaiting() {
        return waiting.size() + numParked;
    }

    public long numPreemptions() {
        return numPreemptions;
    }

    /** The running sequences, in admission order (a view; do not modify). */
    public List<Sequence> running() {
        return java.util.Collections.unmodifiableList(running);
    }

    /**
     * Decides the next step. The plan is empty when nothing can run. It stays valid until the
     * call after next (the two latest plans are both readable).
     */
    public StepPlan schedule() {
        StepPlan plan = plans[nextPlan];
        nextPlan ^= 1;
        plan.reset();
        int budget = config.maxBatchedTokens();
        boolean preempted = false;
        for (int i = 0; i < running.size() && budget > 0; i++) {
            Sequence seq = running.get(i);
            int count = Math.min(seq.numTokens() - seq.numComputedTokens(), budget);
            boolean allocated = false;
            while (!(allocated = kv.allocateSlots(seq.blocks(), null, seq.numComputedTokens() + count))) {
                // Free the most recently admitted sequence's blocks; it will recompute later.
                Sequence victim = running.remove(running.size() - 1);
                preempt(victim);
                preempted = true;
                if (victim == seq) {
                    break;
                }
            }
            if (!allocated) {
                break;
            }
            plan.add(seq, count, blockSize);
            budget -= count;
        }
        if (!preempted) {
            while (budget > 0 && running.size() < config.maxRunningSeqs() && !waiting.isEmpty()) {
                Sequence seq = waiting.peekFirst();
                int count = admit(seq, budget);
                if (count == 0) {
                    break; // FCFS: no one overtakes the head of the queue
                }
                waiting.pollFirst();
                seq.setStatus(Sequence.Status.RUNNING);
                running.add(seq);
                plan.add(seq, count, blockSize);
                budget -= count;
            }
        }
        plan.seal();
        return plan;
    }

    /**
     * Gives a waiting sequence its cached prefix (or its fork parent's prompt blocks) and the
     * blocks for its first chunk; returns the chunk's token count, or 0 (changing nothing) when
     * the blocks are not there.
     */
    private int admit(Sequence seq, int budget) {
        BlockTable table = seq.blocks();
        Sequence parent = seq.forkParent();
        int shareable = parent == null ? 0 : Math.min(parent.numComputedTokens(), seq.numPromptTokens() - 1) / blockSize;
        if (parent != null && parent.status() == Sequence.Status.RUNNING && shareable > 0
                && seq.numTokens() == seq.numPromptTokens() && parent.blocks().size() >= shareable) {
            kv.fork(parent.blocks(), table, shareable);
            int computed = shareable * blockSize;
            int count = Math.min(seq.numTokens() - computed, budget);
            if (!kv.allocateSlots(table, null, computed + count)) {
                kv.free(table);
                return 0;
            }
            seq.setNumComputedTokens(computed);
            seq.recordCachedPromptTokens(computed);
            return count;
        }
        KvCacheManager.PrefixHit hit = kv.findCachedPrefix(table, seq.tokens(), seq.numTokens());
        int computed = hit.numTokens(blockSize);
        int count = Math.min(seq.numTokens() - computed, budget);
        if (!kv.allocateSlots(table, hit, computed + count)) {
            return 0;
        }
        seq.setNumComputedTokens(computed);
        seq.recordCachedPromptTokens(computed);
        return count;
    }

    private void preempt(Sequence victim) {
        kv.free(victim.blocks());
        victim.preempted();
        waiting.addFirst(victim);
        numPreemptions++;
    }

    /**
     * Applies a step's results: the scheduled tokens are now computed (full blocks enter the
     * prefix cache), each sampling sequence gets its token, and sequences that hit end-of-sequence,
     * a stop token, the end of their structured output, max_tokens or the context length finish
     * (their blocks freed).
     */
    public void update(StepPlan step, SamplerOutput sampled) {
        for (int i = 0; i < step.numSeqs(); i++) {
            Sequence seq = step.seq(i);
            if (seq.isFinished()) {
                continue; // ended while the step ran (a stop string in the step before's text, a cancel)
            }
            seq.setNumComputedTokens(seq.numComputedTokens() + step.numScheduled(i));
            kv.cacheFullBlocks(seq.blocks(), seq.tokens(), seq.numComputedTokens());
            if (!seq.parked().isEmpty() && seq.numComputedTokens() >= seq.numPromptTokens()) {
                releaseParked(seq);
            }
        }
        boolean anyFinished = false;
        for (int r = 0; r < step.numSampling(); r++) {
            Sequence seq = step.samplingSeq(r);
            if (seq.isFinished()) {
                continue; // its token is dropped
            }
            int token = sampled.tokenId(r);
            seq.append(token);
            FinishCause reason = null;
            String detail = null;
            boolean minReached = seq.numOutputTokens() >= seq.sampling().settings().minTokens();
            TokenConstraint constraint = seq.sampling().constraint();
            if (minReached && !seq.sampling().settings().ignoreEos() && contains(eosTokenIds, token)) {
                reason = FinishCause.STOP;
                seq.markEndedByToken();
            } else if (minReached && contains(seq.stopTokenIds(), token)) {
                reason = FinishCause.STOP;
                detail = Integer.toString(token);
                seq.markEndedByToken();
            } else if (constraint != null && constraint.isFailed()) {
                reason = FinishCause.ABORT;
                detail = "no token of the vocabulary continues the structured output";
            } else if (constraint != null && constraint.isTerminated()) {
                reason = FinishCause.STOP; // the structured output is complete and nothing may follow
            } else if (seq.numOutputTokens() >= seq.maxTokens() || seq.numTokens() >= config.maxModelLen()) {
                reason = FinishCause.LENGTH;
            }
            if (reason != null) {
                release(seq, reason, detail);
                anyFinished = true;
            }
        }
        if (anyFinished) {
            running.removeIf(Sequence::isFinished);
        }
    }

    /**
     * Ends a sequence now (a stop string found by the engine, a cancel): frees its blocks and
     * removes it from whichever queue holds it. Its parked siblings are released to compute on
     * their own. No-op for a finished sequence.
     */
    public void finish(Sequence seq, FinishCause reason, String detail) {
        switch (seq.status()) {
            case FINISHED -> {
                return;
            }
            case RUNNING -> running.remove(seq);
            case WAITING -> waiting.remove(seq);
            case PARKED -> {
                seq.forkParent().parked().remove(seq);
                numParked--;
            }
        }
        release(seq, reason, detail);
    }

    private void release(Sequence seq, FinishCause reason, String detail) {
        kv.free(seq.blocks());
        seq.finish(reason, detail);
        if (!seq.parked().isEmpty()) {
            releaseParked(seq);
        }
    }

    /** Moves a parent's parked siblings to the front of the waiting queue, in index order. */
    private void releaseParked(Sequence parent) {
        List<Sequence> children = parent.parked();
        for (int i = children.size() - 1; i >= 0; i--) {
            Sequence child = children.get(i);
            child.setStatus(Sequence.Status.WAITING);
            waiting.addFirst(child);
        }
        numParked -= children.size();
        children.clear();
    }

    /** Finishes every sequence (engine shutdown or failure); returns them. */
    public List<Sequence> finishAll(FinishCause reason, String detail) {
        List<Sequence> all = new ArrayList<>(running);
        all.addAll(waiting);
        for (Sequence seq : running) {
            for (Sequence child : seq.parked()) {
                all.add(child);
            }
        }
        for (Sequence seq : waiting) {
            all.addAll(seq.parked());
        }
        for (Sequence seq : all) {
            finish(seq, reason, detail);
        }
        return all;
    }

    private static boolean contains(int[] ids, int token) {
        for (int id : ids) {
            if (id == token) {
                return true;
            }
        }
        return false;
    }

    /**
     * Checks the bookkeeping: limits, each sequence's blocks against its computed tokens,
     * reference counts against the live block tables, and that every block a sequence may still
     * write is held by it alone. Returns the first violation, or null. For tests.
     */
    public String checkInvariants() {
        if (running.size() > config.maxRunningSeqs()) {
            return running.size() + " running sequences exceed the cap of " + config.maxRunningSeqs();
        }
        List<BlockTable> tables = new ArrayList<>();
        for (Sequence seq : running) {
            if (seq.status() != Sequence.Status.RUNNING) {
                return "running queue holds " + seq;
            }
            int need = kv.blocksFor(seq.numComputedTokens());
            if (seq.blocks().size() != need) {
                return seq + " holds " + seq.blocks().size() + " blocks for " + seq.numComputedTokens()
                        + " computed tokens (expected " + need + ")";
            }
            if (seq.numComputedTokens() >= seq.numTokens()) {
                return seq + " has nothing left to compute";
            }
            tables.add(seq.blocks());
        }
        int parked = 0;
        for (Iterator<Sequence> it = waiting.iterator(); it.hasNext();) {
            Sequence seq = it.next();
            if (seq.status() != Sequence.Status.WAITING || seq.blocks().size() != 0 || seq.numComputedTokens() != 0) {
                return "waiting queue holds " + seq;
            }
            parked += seq.parked().size();
        }
        for (Sequence seq : running) {
            parked += seq.parked().size();
        }
        if (parked != numParked) {
            return numParked + " sequences counted as parked, " + parked + " found";
        }
        String refs = kv.checkConsistency(tables);
        if (refs != null) {
            return refs;
        }
        // A block past a holder's full computed blocks will be written: it must be exclusive.
        for (Sequence seq : running) {
            int firstWritable = seq.numComputedTokens() / blockSize;
            for (int i = firstWritable; i < seq.blocks().size(); i++) {
                int block = seq.blocks().get(i);
                if (kv.pool().refCount(block) != 1) {
                    return seq + " may write block " + block + " which has " + kv.pool().refCount(block) + " holders";
                }
            }
        }
        return null;
    }
}
