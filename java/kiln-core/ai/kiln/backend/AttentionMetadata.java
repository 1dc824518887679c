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
 * @param numDecodeSeqs   how many of the first sequences have one query row each (decodes, or
 *                        one-token prompt chunks): a backend may attend those with its decode
 *                        kernel and only the rest with its prefill kernel, as a mixed step of
 *                        many decodes and a few prompt chunks wants; 0 asks for no split
 */
public record AttentionMetadata(Tensor blockTables, Tensor queryStart, Tensor seqLens, int numSeqs,
        int numTokens, int maxBlocksPerSeq, int maxQueryLen, int maxSeqLen, int numDecodeSeqs) {

    public AttentionMetadata {
        if (numDecodeSeqs < 0 || numDecodeSeqs > numSeqs || numDecodeSeqs > numTokens) {
            throw new IllegalArgumentException("numDecodeSeqs " + numDecodeSeqs + " is outside [0, min(numSeqs "
                    + numSeqs + ", numTokens " + numTokens + ")]");
        }
    }

    /** Metadata that asks for no split (numDecodeSeqs 0). */
    public AttentionMetadata(Tensor blockTables, Tensor queryStart, Tensor seqLens, int numSeqs, int numTokens,
            int maxBlocksPerSeq, int maxQueryLen, int maxSeqLen) {
        this(blockTables, queryStart, seqLens, numSeqs, numTokens, maxBlocksPerSeq, maxQueryLen, maxSeqLen, 0);
    }
}
