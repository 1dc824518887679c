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

    /**
     * Checks every index the step will use against the sizes it indexes into, so that no kernel is
     * ever handed an out-of-range token id, position, slot, block or row (the CUDA kernels read
     * these arrays on the device and cannot check them against the host's view).
     */
    public void validate(int vocabSize, int maxPositions, int numBlocks, int blockSize) {
        long numSlots = (long) numBlocks * blockSize;
        for (int t = 0; t < numTokens; t++) {
            if (tokenIds[t] < 0 || tokenIds[t] >= vocabSize) {
                throw new IllegalArgumentException("token id " + tokenIds[t] + " is outside the vocabulary [0, "
                        + vocabSize + ")");
            }
            if (positions[t] < 0 || positions[t] >= maxPositions) {
                throw new IllegalArgumentException("position " + positions[t] + " is outside [0, " + maxPositions + ")");
            }
            if (slotMapping[t] < -1 || slotMapping[t] >= numSlots) {
                throw new IllegalArgumentException("slot " + slotMapping[t] + " is outside [-1, " + numSlots + ")");
            }
        }
        if (queryStart[0] != 0 || queryStart[numSeqs] != numTokens) {
            throw new IllegalArgumentException("queryStart must run from 0 to numTokens " + numTokens);
        }
        for (int s = 0; s < numSeqs; s++) {
            int queryLen = queryStart[s + 1] - queryStart[s];
            if (queryLen < 1 || queryLen > seqLens[s] || (long) seqLens[s] > (long) maxBlocksPerSeq * blockSize
                    || seqLens[s] > maxPositions) {
                throw new IllegalArgumentException("sequence " + s + ": query length " + queryLen
                        + " and context length " + seqLens[s] + " do not fit " + maxBlocksPerSeq + " blocks of "
                        + blockSize);
            }
            int usedBlocks = (seqLens[s] + blockSize - 1) / blockSize;
            for (int b = 0; b < usedBlocks; b++) {
                int block = blockTables[s * maxBlocksPerSeq + b];
                if (block < 0 || block >= numBlocks) {
                    throw new IllegalArgumentException("sequence " + s + ": block " + block + " is outside [0, "
                            + numBlocks + ")");
                }
            }
        }
        for (int r = 0; r < numLogitsRows; r++) {
            if (logitsRows[r] < 0 || logitsRows[r] >= numTokens) {
                throw new IllegalArgumentException("logits row " + logitsRows[r] + " is outside [0, " + numTokens + ")");
            }
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

    /**
     * How many of the first sequences have a query of one token (the scheduler puts the running
     * decodes first, and the prompt chunks it admits after them).
     */
    public int numLeadingSingleTokenSeqs() {
        int s = 0;
        while (s < numSeqs && queryStart[s + 1] - queryStart[s] == 1) {
            s++;
        }
        return s;
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
