package ai.kiln.scheduler;

import ai.kiln.model.ForwardBatch;
import ai.kiln.sampling.SamplingBatch;
import java.util.Arrays;

/**
 * One step decided by the {@link Scheduler}: which sequences run how many tokens, the packed
 * model input, and which sequences sample (in logits-row order). Reused step after step: valid
 * until the next {@link Scheduler#schedule()}.
 */
public final class StepPlan {

    private final int maxBlocksPerSeq;
    // Scheduled sequences, in batch order.
    private Sequence[] seqs;            // [numSeqs]
    private int[] numScheduled;         // [numSeqs] tokens each computes this step
    private int numSeqs;
    private int numTokens;
    private int numPrefillTokens;       // of numTokens, those of prompt chunks (not single decode tokens)
    // Model input, allocated once for the largest step.
    final int[] tokenIds;               // [maxTokens]
    final int[] positions;              // [maxTokens]
    final int[] slotMapping;            // [maxTokens]
    final int[] queryStart;             // [maxSeqs + 1]
    final int[] seqLens;                // [maxSeqs]
    final int[] blockTables;            // [maxSeqs, maxBlocksPerSeq]
    // What each block-table row holds from earlier steps, so that a sequence that keeps its row
    // (the running ones do, step after step) costs only its new blocks.
    final int[] rowFilled;              // [maxSeqs] entries written
    private final Sequence[] rowSeq;    // [maxSeqs] whose blocks they are
    private final int[] rowEpoch;       // [maxSeqs] that table's epoch then
    final int[] logitsRows;             // [maxSeqs]
    // Sampling rows, logits row r for samplingSeqs[r].
    private final Sequence[] samplingSeqs; // [maxSeqs]
    private final SamplingBatch sampling;
    private int numSampling;
    private ForwardBatch batch;

    StepPlan(int maxTokens, int maxSeqs, int maxBlocksPerSeq) {
        this.maxBlocksPerSeq = maxBlocksPerSeq;
        seqs = new Sequence[maxSeqs];
        numScheduled = new int[maxSeqs];
        tokenIds = new int[maxTokens];
        positions = new int[maxTokens];
        slotMapping = new int[maxTokens];
        queryStart = new int[maxSeqs + 1];
        seqLens = new int[maxSeqs];
        blockTables = new int[Math.multiplyExact(maxSeqs, maxBlocksPerSeq)];
        rowFilled = new int[maxSeqs];
        rowSeq = new Sequence[maxSeqs];
        rowEpoch = new int[maxSeqs];
        logitsRows = new int[maxSeqs];
        samplingSeqs = new Sequence[maxSeqs];
        sampling = new SamplingBatch(maxSeqs);
    }

    void reset() {
        Arrays.fill(seqs, 0, numSeqs, null);
        Arrays.fill(samplingSeqs, 0, numSampling, null);
        numSeqs = 0;
        numTokens = 0;
        numPrefillTokens = 0;
        numSampling = 0;
        sampling.clear();
        batch = null;
    }

    /** Adds a sequence computing {@code count} tokens from its first uncomputed one. */
    void add(Sequence seq, int count, int blockSize) {
        int s = numSeqs++;
        seqs[s] = seq;
        numScheduled[s] = count;
        int start = seq.numComputedTokens();
        int end = start + count;
        int t = numTokens;
        queryStart[s] = t;
        int[] tokens = seq.tokens();
        int[] blocks = seq.blocks().ids();
        for (int pos = start; pos < end;) {
            // The run of positions within one block: slots are consecutive there.
            int offset = pos % blockSize;
            int slot = blocks[pos / blockSize] * blockSize + offset;
            int runEnd = Math.min(end, pos + blockSize - offset);
            for (; pos < runEnd; pos++, t++, slot++) {
                tokenIds[t] = tokens[pos];
                positions[t] = pos;
                slotMapping[t] = slot;
            }
        }
        numTokens = t;
        queryStart[s + 1] = t;
        boolean decode = count == 1 && end == seq.numTokens() && seq.numOutputTokens() > 0;
        numPrefillTokens += decode ? 0 : count;
        seqLens[s] = end;
        // Block-table row: this sequence's blocks, zeros after (only where a longer row was before).
        int used = seq.blocks().size();
        int epoch = seq.blocks().epoch();
        int rowStart = s * maxBlocksPerSeq;
        int from = rowSeq[s] == seq && rowEpoch[s] == epoch && rowFilled[s] <= used ? rowFilled[s] : 0;
        System.arraycopy(blocks, from, blockTables, rowStart + from, used - from);
        if (rowFilled[s] > used) {
            Arrays.fill(blockTables, rowStart + used, rowStart + rowFilled[s], 0);
        }
        rowFilled[s] = used;
        rowSeq[s] = seq;
        rowEpoch[s] = epoch;
        if (end == seq.numTokens()) {
            // The last known token is computed: its logits give the next token.
            logitsRows[numSampling] = t - 1;
            samplingSeqs[numSampling] = seq;
            sampling.add(seq.sampling(), seq.tokens(), seq.numPromptTokens(), seq.numTokens());
            numSampling++;
        }
    }

    void seal() {
        batch = numSeqs == 0 ? null
                : new ForwardBatch(numTokens, numSeqs, tokenIds, positions, slotMapping, queryStart, seqLens,
                        blockTables, maxBlocksPerSeq, logitsRows, numSampling);
    }

    /** Whether the step has nothing to run. */
    public boolean isEmpty() {
        return numSeqs == 0;
    }

    /** The model's input, or null when empty. */
    public ForwardBatch batch() {
        return batch;
    }

    public int numSeqs() {
        return numSeqs;
    }

    public Sequence seq(int i) {
        return seqs[i];
    }

    /** Tokens sequence {@code i} computes this step. */
    public int numScheduled(int i) {
        return numScheduled[i];
    }

    public int numTokens() {
        return numTokens;
    }

    /** Tokens of the step in prompt chunks (prompts, or recomputes after preemption), not decodes. */
    public int numPrefillTokens() {
        return numPrefillTokens;
    }

    /** Sequences that sample this step. */
    public int numSampling() {
        return numSampling;
    }

    /** The sequence of logits row {@code row}. */
    public Sequence samplingSeq(int row) {
        return samplingSeqs[row];
    }

    /** The sampling states of the sampling sequences, in logits-row order. */
    public SamplingBatch sampling() {
        return sampling;
    }
}
