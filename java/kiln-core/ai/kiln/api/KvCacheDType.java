package ai.kiln.api;

import java.util.Locale;

/** What the KV cache stores (vLLM's --kv-cache-dtype). */
public enum KvCacheDType {
    /** The activations' type (fp32 on the CPU backend, bf16 or fp16 on the CUDA backend). */
    AUTO,
    /**
     * FP8 (e4m3) with one fp32 scale for all of K and one for all of V, 1.0 each (vLLM's default
     * where a checkpoint gives none): a quarter of the CPU backend's fp32 cache, so four times the
     * tokens in the same memory. Each element is stored as e4m3(x / scale), rounded to nearest even
     * and saturating at +-448, and read back as code value x scale. The CPU backend only, so far.
     */
    FP8;

    /** The name on the command line: "auto" or "fp8". */
    public String flagName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The cache type of a command-line name: "auto", "fp8" (or vLLM's "fp8_e4m3"), any case. */
    public static KvCacheDType fromFlag(String name) {
        if ("fp8_e4m3".equalsIgnoreCase(name)) {
            return FP8;
        }
        for (KvCacheDType dtype : values()) {
            if (dtype.flagName().equalsIgnoreCase(name)) {
                return dtype;
            }
        }
        throw new IllegalArgumentException("the KV cache dtype must be \"auto\" or \"fp8\" (\"fp8_e4m3\"), got \""
                + name + "\"");
    }
}
