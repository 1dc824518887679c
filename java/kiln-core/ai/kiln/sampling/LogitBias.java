package ai.kiln.sampling;

import java.util.Arrays;

/**
 * Biases a sequence adds to the logits of some ids before every draw (OpenAI's logit_bias).
 *
 * @param ids    [count] distinct token ids, ascending
 * @param biases [count] the bias of each id
 */
public record LogitBias(int[] ids, float[] biases) {

    /** No bias. */
    public static final LogitBias NONE = new LogitBias(new int[0], new float[0]);

    public LogitBias {
        if (ids.length != biases.length) {
            throw new IllegalArgumentException(ids.length + " ids but " + biases.length + " biases");
        }
        ids = ids.clone();
        biases = biases.clone();
        for (int i = 1; i < ids.length; i++) {
            if (ids[i] <= ids[i - 1]) {
                throw new IllegalArgumentException("logit bias ids must be distinct and ascending");
            }
        }
    }

    public int size() {
        return ids.length;
    }

    public boolean isEmpty() {
        return ids.length == 0;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LogitBias b && Arrays.equals(ids, b.ids) && Arrays.equals(biases, b.biases);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(ids) + Arrays.hashCode(biases);
    }
}
