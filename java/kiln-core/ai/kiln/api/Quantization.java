package ai.kiln.api;

import java.util.Locale;

/** How the engine stores a model's linear-layer weights. */
public enum Quantization {
    /** As the model's files hold them (fp32, fp16 or bf16). */
    NONE,
    /**
     * int8 with one fp32 scale per output row, quantised when the model loads (symmetric: each
     * row's largest magnitude maps to 127): the projections and the LM head read half the bytes of
     * bf16, which is what decode on the CPU is bound by. The embedding table and the norms stay as
     * stored. The CPU backend only.
     */
    INT8,
    /**
     * FP8 (e4m3) with one fp32 scale per output row, quantised when the model loads (each row's
     * largest magnitude maps to 448), and the projections' inputs quantised to e4m3 per token as
     * they run (vLLM's --quantization fp8 with per-channel weights and per-token activations). The
     * q/k/v/o and gate/up/down projections only: the embedding table, the norms and the LM head
     * stay as stored. A checkpoint that is FP8 already loads as stored. The CPU backend, and the CUDA
     * backend on GPUs of compute capability 9.0 or later (Hopper).
     */
    FP8;

    /** The name on the command line: "none", "int8" or "fp8". */
    public String flagName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The quantisation of a command-line name ("none", "int8", "fp8"), any case. */
    public static Quantization fromFlag(String name) {
        for (Quantization quantization : values()) {
            if (quantization.flagName().equalsIgnoreCase(name)) {
                return quantization;
            }
        }
        throw new IllegalArgumentException("quantization must be \"none\", \"int8\" or \"fp8\", got \"" + name
                + "\"");
    }
}
