package ai.kiln.model;

/**
 * How {@link ModelWeights} stores the linear layers: as the files hold them, quantised to int8
 * with a scale per row as they load, or (FP8) the projections quantised to e4m3 with a scale per
 * row and their inputs quantised per token as they run. (The model layer's twin of the API's Quantization, which
 * the engine maps to it.)
 */
public enum WeightQuantization {
    NONE,
    INT8,
    FP8
}
