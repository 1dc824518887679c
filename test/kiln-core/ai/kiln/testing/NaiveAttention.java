package ai.kiln.testing;

/**
 * Causal attention over a paged KV cache in double precision, the reference the attention ops are
 * checked against: sequence s owns query rows [queryStart[s], queryStart[s+1]), its row j sits at
 * position seqLens[s] - queryLen + j and attends to positions 0 ..= that one, the K/V of position
 * p at slot tables[s][p / blockSize] * blockSize + p % blockSize.
 */
public final class NaiveAttention {

    private NaiveAttention() {
    }

    /**
     * @param q      [tokens, numQHeads, headDim]
     * @param kCache [slots, numKvHeads, headDim]
     * @param vCache [slots, numKvHeads, headDim]
     * @return [tokens, numQHeads, headDim]
     */
    public static double[] attend(float[] q, float[] kCache, float[] vCache, int[][] tables, int[] queryLens,
            int[] seqLens, int numQHeads, int numKvHeads, int headDim, int blockSize, float scale) {
        int tokens = 0;
        for (int len : queryLens) {
            tokens += len;
        }
        double[] out = new double[tokens * numQHeads * headDim];
        int token = 0;
        for (int s = 0; s < queryLens.length; s++) {
            for (int j = 0; j < queryLens[s]; j++, token++) {
                int position = seqLens[s] - queryLens[s] + j;
                for (int h = 0; h < numQHeads; h++) {
                    int kvHead = h / (numQHeads / numKvHeads);
                    double[] weights = new double[position + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int p = 0; p <= position; p++) {
                        int slot = tables[s][p / blockSize] * blockSize + p % blockSize;
                        double dot = 0;
                        for (int e = 0; e < headDim; e++) {
                            dot += (double) q[(token * numQHeads + h) * headDim + e]
                                    * kCache[(slot * numKvHeads + kvHead) * headDim + e];
                        }
                        weights[p] = dot * scale;
                        max = Math.max(max, weights[p]);
                    }
                    double sum = 0;
                    for (int p = 0; p <= position; p++) {
                        weights[p] = Math.exp(weights[p] - max);
                        sum += weights[p];
                    }
                    for (int e = 0; e < headDim; e++) {
                        double value = 0;
                        for (int p = 0; p <= position; p++) {
                            int slot = tables[s][p / blockSize] * blockSize + p % blockSize;
                            value += weights[p] / sum * vCache[(slot * numKvHeads + kvHead) * headDim + e];
                        }
                        out[(token * numQHeads + h) * headDim + e] = value;
                    }
                }
            }
        }
        return out;
    }
}
