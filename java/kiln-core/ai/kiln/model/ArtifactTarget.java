package ai.kiln.model;

import ai.kiln.tensor.DType;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** What a compiled artifact is laid out for: the backend, and on CUDA the compute capability family. */
public enum ArtifactTarget {
    /** The CPU backend: float weights as the checkpoint stores them; int8 and FP8 quantisation. */
    CPU("cpu", null, true, true),
    /** CUDA GPUs of compute capability 8.x (the library's sm_80 build): bf16 weights, no FP8. */
    CUDA_SM80("cuda-sm80", DType.BF16, false, false),
    /** CUDA GPUs of compute capability 9.x (H100, H200): bf16 weights, or FP8 with a scale per row. */
    CUDA_SM90("cuda-sm90", DType.BF16, true, false);

    /** The name on the command line and in the artifact's manifest. */
    public final String flagName;
    /** The type the target's backend keeps float weights as; null: as stored. */
    public final DType floatWeights;
    private final boolean fp8;
    private final boolean int8;

    ArtifactTarget(String flagName, DType floatWeights, boolean fp8, boolean int8) {
        this.flagName = flagName;
        this.floatWeights = floatWeights;
        this.fp8 = fp8;
        this.int8 = int8;
    }

    /** Whether weights of this quantisation run on the target. */
    public boolean supports(WeightQuantization quantization) {
        return switch (quantization) {
            case NONE -> true;
            case FP8 -> fp8;
            case INT8 -> int8;
        };
    }

    /** The target of a name ("cpu", "cuda-sm80", "cuda-sm90", any case), or an error listing them. */
    public static ArtifactTarget fromFlag(String name) {
        for (ArtifactTarget target : values()) {
            if (target.flagName.equalsIgnoreCase(name)) {
                return target;
            }
        }
        throw new IllegalArgumentException("unknown target '" + name + "' (expected one of "
                + Arrays.stream(values()).map(t -> t.flagName).collect(Collectors.joining(", ")) + ")");
    }

    /** The name, as {@link #flagName}. */
    @Override
    public String toString() {
        return flagName.toLowerCase(Locale.ROOT);
    }
}
