package ai.kiln.model;

/**
 * How {@link ModelWeights} stores the linear layers: as the files hold them, or quantised to int8
 * with a scale per row as they load. (The model layer's twin of the API's Quantization, which
 * the engine maps to it.)
 */
public enum WeightQuantization {
    NONE,
    INT8
}
