package ai.kiln.sampling;

import ai.kiln.tensor.Tensor;

/**
 * Chooses each sampling sequence's next token from a step's logits ({@link BackendSampler}: on
 * the backend that holds them).
 */
public interface Sampler extends AutoCloseable {

    /**
     * Samples one token per row and records it in the row's {@link SequenceSampling}:
     * {@link #launch} then {@link #collect}.
     *
     * @param logits [rows.size(), V] in backend memory, row i for {@code rows.get(i)}
     * @param rows   the sequences sampling this step, in logits-row order
     * @param out    receives the chosen ids (and log-probabilities where asked), row by row
     */
    default void sample(Tensor logits, SamplingBatch rows, SamplerOutput out) {
        launch(logits, rows);
        collect(out);
    }

    /**
     * Issues the sampling of a step's rows on the backend and returns without waiting for it, so
     * that the host can do other work while the device computes the step. {@code rows} must stay
     * unchanged until {@link #collect}; one launch at a time. The logits of rows with a logit bias
     * or a {@link TokenConstraint} are changed in place (biased, masked).
     */
    void launch(Tensor logits, SamplingBatch rows);

    /**
     * Waits for the launched step's ids and records them (in {@code out}, and each row's token in
     * its {@link SequenceSampling}).
     */
    void collect(SamplerOutput out);

    @Override
    void close();
}
