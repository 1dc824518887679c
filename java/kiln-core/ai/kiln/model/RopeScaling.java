package ai.kiln.model;

/**
 * How rotary frequencies are computed.
 *
 * @param type                       "default", "linear" or "llama3"
 * @param factor                     frequency division factor (linear, llama3)
 * @param lowFreqFactor              llama3 only
 * @param highFreqFactor             llama3 only
 * @param originalMaxPositions       llama3 only: the context the frequencies were trained for
 */
public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositions) {

    public static final RopeScaling NONE = new RopeScaling("default", 1.0, 0, 0, 0);

    public RopeScaling {
        switch (type) {
            case "default" -> { }
            case "linear" -> {
                if (!(factor > 0)) {
                    throw new IllegalArgumentException("linear rope scaling needs factor > 0, got " + factor);
                }
            }
            case "llama3" -> {
                if (!(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)
                        || originalMaxPositions <= 0) {
                    throw new IllegalArgumentException("llama3 rope scaling needs factor > 0, 0 < low_freq_factor"
                            + " < high_freq_factor and original_max_position_embeddings > 0");
                }
            }
            default -> throw new IllegalArgumentException("unsupported rope scaling type '" + type
                    + "' (supported: default, linear, llama3)");
        }
    }

    /**
     * The inverse frequencies, computed as Hugging Face transformers does in fp32:
     * 1 / theta^(2i / headDim), then adjusted for the scaling type.
     */
    public float[] inverseFrequencies(double theta, int headDim) {
        int half = headDim / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = (float) (2 * i) / (float) headDim;
            inv[i] = (float) (1.0 / (float) Math.pow(theta, exponent));
        }
        switch (type) {
            case "linear" -> {
                for (int i = 0; i < half; i++) {
                    inv[i] = (float) (inv[i] / factor);
                }
            }
            case "llama3" -> {
                double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
                double highFreqWavelen = originalMaxPositions / highFreqFactor;
                for (int i = 0; i < half; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = (float) (inv[i] / factor);
                    } else if (wavelen >= highFreqWavelen) {
                        double smooth = (originalMaxPositions / wavelen - lowFreqFactor)
                                / (highFreqFactor - lowFreqFactor);
                        inv[i] = (float) ((1 - smooth) * inv[i] / factor + smooth * inv[i]);
                    }
                }
            }
            default -> { }
        }
        return inv;
    }
}
