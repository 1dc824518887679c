package ai.kiln.backend;

import ai.kiln.tensor.Tensor;

/**
 * Where a packed batch's tokens sit in the paged KV cache, in backend memory. Sequence s owns
 * query rows [queryStart[s], queryStart[s+1]) and has seqLens[s] tokens of context, its new tokens
 * last; the K/V of its position p live in block blockTables[s, p / blockSize].
 *
 * @param blockTables     [numSeqs, maxBlocksPerSeq] I32
 * @param queryStart      [numSeqs + 1] I32
 * @param seqLens         [numSeqs] I32
 * @param numSeqs         sequences in the batch
 * @param numTokens       query rows in the batch
 * @param maxBlocksPerSeq the block table's row length
 * @param maxQueryLen     the longest query of the batch (1 for a pure decode step)
 * @param maxSeqLen       the longest context of the batch
 */
public record AttentionMetadata(Tensor blockTables, Tensor queryStart, Tensor seqLens, int numSeqs,
        int numTokens, int maxBlocksPerSeq, int maxQueryLen, int maxSeqLen) {
}
