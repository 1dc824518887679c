package ai.kiln.tensor;

/** Element types. The codes are those of the native headers' {@code kiln_dtype}. */
public enum DType {
    F32(0, 4, "F32"),
    F16(1, 2, "F16"),
    BF16(2, 2, "BF16"),
    I32(3, 4, "I32"),
    I64(4, 8, "I64"),
    /** Quantised weights (with a scale per row, kept beside them). */
    I8(5, 1, "I8"),
    /**
     * FP8 e4m3 ("e4m3fn": no infinities, NaN 0x7f/0xff, largest finite 448) weights, one byte each,
     * with a scale per row kept beside them (native/include/kiln_cpu.h has the rounding rules).
     */
    F8_E4M3(6, 1, "F8_E4M3");

    public final int code;
    public final int bytes;
    /** The dtype's name in safetensors headers. */
    public final String safetensorsName;

    DType(int code, int bytes, String safetensorsName) {
        this.code = code;
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
    }

    public boolean isFloat() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** The dtype for a safetensors dtype name, or null if Kiln does not read it. */
    public static DType fromSafetensors(String name) {
        for (DType dtype : values()) {
            if (dtype.safetensorsName.equals(name)) {
                return dtype;
            }
        }
        return null;
    }
}
