package ai.kiln.model;

/**
 * One step's input to the model, built by the scheduler: a packed batch of sequences, each
 * contributing its new tokens (a prompt chunk, or one token when decoding). The arrays may be
 * longer than the counts (the scheduler reuses them step to step); only the counted prefix is
 * read.
 *
 * @param numTokens       T, tokens in the step
 * @param numSeqs         S, sequences in the step
 * @param tokenIds        [T] the new tokens, sequence after sequence
 * @param positions       [T] each token's position in its sequence
 * @param slotMapping     [T] the KV-cache slot each token's K/V are written to (-1: skip)
 * @param queryStart      [S + 1] sequence s owns tokens [queryStart[s], queryStart[s+1])
 * @param seqLens         [S] context length of each sequence after this step
 * @param blockTables     [S * maxBlocksPerSeq] row-major block table, unused entries 0
 * @param maxBlocksPerSeq the block table's row length
 * @param logitsRows      [R] the token rows whose logits are wanted (each sequence's last token
 *                        when it samples this step)
 * @param numLogitsRows   R
 */
public record ForwardBatch(int numTokens, int numSeqs, int[] tokenIds, int[] positions, int[] slotMapping,
        int[] queryStart, int[] seqLens, int[] blockTables, int maxBlocksPerSeq, int[] logitsRows,
        int numLogitsRows) {

    public ForwardBatch {
        if (numTokens < 1 || numSeqs < 1 || numSeqs > numTokens) {
            throw new IllegalArgumentException("a step needs 1 <= numSeqs <= numTokens, got " + numSeqs + " and "
                    + numTokens);
        }
        if (tokenIds.length < numTokens || positions.length < numTokens || slotMapping.length < numTokens
                || queryStart.length < numSeqs + 1 || seqLens.length < numSeqs
                || blockTables.length < (long) numSeqs * maxBlocksPerSeq || logitsRows.length < numLogitsRows
                || numLogitsRows < 0) {
            throw new IllegalArgumentException("a ForwardBatch array is shorter than its count");
        }
    }

    /** The longest query of the batch. */
    public int maxQueryLen() {
        int max = 0;
        for (int s = 0; s < numSeqs; s++) {
            max = Math.max(max, queryStart[s + 1] - queryStart[s]);
        }
        return max;
    }

    /** The longest context of the batch. */
    public int maxSeqLen() {
        int max = 0;
        for (int s = 0; s < numSeqs; s++) {
            max = Math.max(max, seqLens[s]);
        }
        return max;
    }
}
