package ai.kiln.sampling;

import ai.kiln.tensor.Tensor;

/**
 * Chooses each sampling sequence's next token from a step's logits ({@link BackendSampler}: on
 * the backend that holds them).
 */
public interface Sampler extends AutoCloseable {

    /**
     * Samples one token per row and records it in the row's {@link SequenceSampling}.
     *
     * @param logits [rows.size(), V] in backend memory, row i for {@code rows.get(i)}
     * @param rows   the sequences sampling this step, in logits-row order
     * @param out    receives the chosen ids (and log-probabilities where asked), row by row
     */
    void sample(Tensor logits, SamplingBatch rows, SamplerOutput out);

    @Override
    void close();
}
