package ai.kiln.api;

import java.util.Locale;

/** What the KV cache stores (vLLM's --kv-cache-dtype). */
public enum KvCacheDType {
    /** The activations' type (fp32 on the CPU backend, bf16 or fp16 on the CUDA backend). */
    AUTO,
    /**
     * FP8 (e4m3): each (token, KV head) row of K and of V stored as e4m3 codes with an fp32 scale of
     * its own (the row's largest magnitude / 448), head_dim + 4 bytes where fp32 takes 4 x head_dim
     * (3.9x the tokens in the same memory at head_dim 128), read back as code value x scale. A
     * checkpoint's per-tensor K and V scales are not used. On the CUDA backend (bf16 / fp16
     * activations, head_dim 64, 128 or 256) a token takes head_dim + 4 bytes where bf16 takes 2 x
     * head_dim: 1.94x the tokens at head_dim 128.
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
