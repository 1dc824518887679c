package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The counts a backend reads from a step's batch to pick its attention kernels. */
class ForwardBatchTest {

    static ForwardBatch batch(int... queryLens) {
        int seqs = queryLens.length;
        int[] queryStart = new int[seqs + 1];
        int[] seqLens = new int[seqs];
        for (int s = 0; s < seqs; s++) {
            queryStart[s + 1] = queryStart[s] + queryLens[s];
            seqLens[s] = queryLens[s] + 10;
        }
        int tokens = queryStart[seqs];
        return new ForwardBatch(tokens, seqs, new int[tokens], new int[tokens], new int[tokens], queryStart, seqLens,
                new int[seqs], 1, new int[seqs], seqs);
    }

    @Test
    void leadingSingleTokenQueriesAreCountedUpToTheFirstLongerOne() {
        assertEquals(3, batch(1, 1, 1, 40, 1).numLeadingSingleTokenSeqs());
        assertEquals(0, batch(7, 1, 1).numLeadingSingleTokenSeqs());
        assertEquals(4, batch(1, 1, 1, 1).numLeadingSingleTokenSeqs());
        assertEquals(40, batch(1, 1, 1, 40, 1).maxQueryLen());
    }
}
