package ai.kiln.backend;

/**
 * How an FP8 GEMM quantises its input activations before multiplying them by e4m3 weights
 * (kiln_cpu_quantize_e4m3_inputs in native/include/kiln_cpu.h has the exact rounding).
 *
 * @param mode            weight-only, a scale per token row, or one static scale
 * @param staticScale     the checkpoint's input_scale for {@link Mode#STATIC_PER_TENSOR}; 0 otherwise
 * @param scaleUpperBound for {@link Mode#DYNAMIC_PER_TOKEN}, the bound a row's largest magnitude is
 *                        clamped to before its scale is taken (fbgemm's activation_scale_ub); 0 for none
 */
public record InputQuantization(Mode mode, float staticScale, float scaleUpperBound) {

    public enum Mode {
        /** W8A16: the activations are multiplied as they are. */
        NONE,
        /** Each row's scale is its largest magnitude / 448. */
        DYNAMIC_PER_TOKEN,
        /** One scale, calibrated offline and stored with the checkpoint. */
        STATIC_PER_TENSOR
    }

    public static final InputQuantization WEIGHT_ONLY = new InputQuantization(Mode.NONE, 0, 0);
    public static final InputQuantization DYNAMIC = new InputQuantization(Mode.DYNAMIC_PER_TOKEN, 0, 0);

    public InputQuantization {
        if (mode == null) {
            throw new IllegalArgumentException("an input quantization needs a mode");
        }
        if (mode == Mode.STATIC_PER_TENSOR ? !(staticScale > 0 && Float.isFinite(staticScale)) : staticScale != 0) {
            throw new IllegalArgumentException("a static input scale must be positive and finite (and only static"
                    + " inputs have one), got " + staticScale + " for " + mode);
        }
        if (!(scaleUpperBound >= 0 && Float.isFinite(scaleUpperBound))
                || (scaleUpperBound != 0 && mode != Mode.DYNAMIC_PER_TOKEN)) {
            throw new IllegalArgumentException("an activation scale upper bound must be positive and finite, and"
                    + " only dynamic inputs have one; got " + scaleUpperBound + " for " + mode);
        }
    }

    public static InputQuantization staticPerTensor(float scale) {
        return new InputQuantization(Mode.STATIC_PER_TENSOR, scale, 0);
    }

    public static InputQuantization dynamicPerToken(float scaleUpperBound) {
        return new InputQuantization(Mode.DYNAMIC_PER_TOKEN, 0, scaleUpperBound);
    }
}
