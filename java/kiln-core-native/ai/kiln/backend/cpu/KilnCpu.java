package ai.kiln.backend.cpu;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of libkiln_cpu (native/include/kiln_cpu.h). Pointers travel as raw addresses
 * ({@code long}); every function returns a status, 0 for success, else {@link #kiln_last_error()}
 * says what was wrong. Callers use kiln-core's {@code CpuBackend}, which checks shapes first. libkiln_cpu_env is
 * loaded first so that OpenMP's idle threads sleep instead of spinning (see native/cpu/omp_env.c).
 */
@Platform(include = "kiln_cpu.h", link = "kiln_cpu", preload = {"kiln_cpu_env", "gomp@.1"})
public final class KilnCpu {
    static {
        Loader.load();
    }

    private KilnCpu() {
    }

    /** Loads the native libraries (a no-op after the first call). */
    public static void ensureLoaded() {
        // The static initialiser did the work.
    }

    public static native @Cast("const char*") String kiln_last_error();

    public static native @Cast("void*") long kiln_map_file(String path, @Cast("int64_t*") long[] sizeOut);

    public static native int kiln_unmap_file(@Cast("void*") long address, @Cast("int64_t") long size);

    public static native @Cast("void*") long kiln_cpu_alloc(@Cast("int64_t") long bytes);

    public static native void kiln_cpu_free(@Cast("void*") long address);

    public static native int kiln_cpu_copy(@Cast("void*") long dst, @Cast("const void*") long src,
            @Cast("int64_t") long bytes);

    public static native int kiln_cpu_copy(@Cast("void*") long dst, @Cast("const void*") int[] src,
            @Cast("int64_t") long bytes);

    public static native int kiln_cpu_copy(@Cast("void*") int[] dst, @Cast("const void*") long src,
            @Cast("int64_t") long bytes);

    public static native int kiln_cpu_copy(@Cast("void*") float[] dst, @Cast("const void*") long src,
            @Cast("int64_t") long bytes);

    public static native int kiln_cpu_copy(@Cast("void*") long dst, @Cast("const void*") float[] src,
            @Cast("int64_t") long bytes);

    public static native int kiln_cpu_copy(@Cast("void*") byte[] dst, @Cast("const void*") long src,
            @Cast("int64_t") long bytes);

    public static native int kiln_cpu_convert(@Cast("void*") long dst, int dstDtype, @Cast("const void*") long src,
            int srcDtype, @Cast("int64_t") long n);

    public static native @Cast("int64_t") long kiln_cpu_find_non_finite(@Cast("const void*") long src, int dtype,
            @Cast("int64_t") long n);

    public static native void kiln_cpu_set_num_threads(int numThreads);

    public static native int kiln_cpu_get_num_threads();

    public static native int kiln_cpu_embedding(@Cast("float*") long out, @Cast("const void*") long table,
            int tableDtype, @Cast("const int32_t*") long ids, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long hidden, @Cast("int64_t") long vocab);

    public static native int kiln_cpu_rms_norm(@Cast("float*") long out, @Cast("int64_t") long outStride,
            @Cast("const float*") long x, @Cast("int64_t") long xStride, @Cast("float*") long residual,
            @Cast("int64_t") long residualStride, @Cast("const void*") long weight, int weightDtype,
            @Cast("int64_t") long rows, @Cast("int64_t") long dim, float eps);

    public static native int kiln_cpu_head_rms_norm(@Cast("float*") long x, @Cast("int64_t") long tokenStride,
            @Cast("int64_t") long numTokens, @Cast("int64_t") long numHeads, @Cast("int64_t") long headDim,
            @Cast("const void*") long weight, int weightDtype, float eps);

    public static native int kiln_cpu_rotary(@Cast("float*") long q, @Cast("int64_t") long qStride,
            @Cast("int64_t") long numQHeads, @Cast("float*") long k, @Cast("int64_t") long kStride,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("const int32_t*") long positions,
            @Cast("int64_t") long numTokens, @Cast("const float*") long cosSin, @Cast("int64_t") long maxPosition,
            int isNeox);

    public static native int kiln_cpu_gemm(@Cast("float*") long out, @Cast("int64_t") long outStride,
            @Cast("const float*") long x, @Cast("int64_t") long xStride, @Cast("const void*") long w, int wDtype,
            @Cast("const void*") long bias, int biasDtype, @Cast("int64_t") long m, @Cast("int64_t") long n,
            @Cast("int64_t") long k);

    public static native int kiln_cpu_gemm_i8(@Cast("float*") long out, @Cast("int64_t") long outStride,
            @Cast("const float*") long x, @Cast("int64_t") long xStride, @Cast("const int8_t*") long w,
            @Cast("const float*") long wScales, @Cast("const void*") long bias, int biasDtype, @Cast("int64_t") long m,
            @Cast("int64_t") long n, @Cast("int64_t") long k);

    public static native int kiln_cpu_quantize_i8_rows(@Cast("int8_t*") long dst, @Cast("float*") long scales,
            @Cast("const void*") long src, int srcDtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols);

    public static final int KILN_FP8_INPUT_NONE = 0;
    public static final int KILN_FP8_INPUT_DYNAMIC_PER_TOKEN = 1;
    public static final int KILN_FP8_INPUT_STATIC_PER_TENSOR = 2;

    public static native int kiln_cpu_f32_to_e4m3(@Cast("uint8_t*") long dst, @Cast("const float*") long src,
            @Cast("int64_t") long n);

    public static native int kiln_cpu_e4m3_to_f32(@Cast("float*") long dst, @Cast("const uint8_t*") long src,
            @Cast("int64_t") long n);

    public static native int kiln_cpu_quantize_e4m3_inputs(@Cast("float*") long xq, @Cast("float*") long scales,
            @Cast("const float*") long x, @Cast("int64_t") long xStride, int mode, float staticScale, float scaleUb,
            @Cast("int64_t") long m, @Cast("int64_t") long k);

    public static native int kiln_cpu_gemm_f8(@Cast("float*") long out, @Cast("int64_t") long outStride,
            @Cast("const float*") long x, @Cast("int64_t") long xStride, @Cast("const uint8_t*") long w,
            @Cast("const float*") long wScales, int inputMode, float inputScale, float inputScaleUb,
            @Cast("const void*") long bias, int biasDtype, @Cast("int64_t") long m, @Cast("int64_t") long n,
            @Cast("int64_t") long k);

    public static native int kiln_cpu_quantize_f8_rows(@Cast("uint8_t*") long dst, @Cast("float*") long scales,
            @Cast("const void*") long src, int srcDtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols);

    public static native @Cast("const char*") String kiln_cpu_gemm_kernels();

    public static native int kiln_cpu_set_gemm_level(int level);

    public static native int kiln_cpu_silu_and_mul(@Cast("float*") long out, @Cast("const float*") long gateUp,
            @Cast("int64_t") long numTokens, @Cast("int64_t") long inter);

    public static native int kiln_cpu_write_kv_cache(@Cast("const float*") long k, @Cast("int64_t") long kStride,
            @Cast("const float*") long v, @Cast("int64_t") long vStride, @Cast("float*") long kCache,
            @Cast("float*") long vCache, @Cast("const int32_t*") long slotMapping, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long numSlots);

    public static native int kiln_cpu_write_kv_cache_e4m3(@Cast("const float*") long k,
            @Cast("int64_t") long kStride, @Cast("const float*") long v, @Cast("int64_t") long vStride,
            @Cast("uint8_t*") long kCache, @Cast("uint8_t*") long vCache, @Cast("float*") long kScales,
            @Cast("float*") long vScales, @Cast("const int32_t*") long slotMapping, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long numSlots);

    public static native int kiln_cpu_attention_e4m3(@Cast("float*") long out, @Cast("int64_t") long outStride,
            @Cast("const float*") long q, @Cast("int64_t") long qStride, @Cast("const uint8_t*") long kCache,
            @Cast("const uint8_t*") long vCache, @Cast("const float*") long kScales,
            @Cast("const float*") long vScales, @Cast("const int32_t*") long blockTables,
            @Cast("int64_t") long maxBlocksPerSeq, @Cast("const int32_t*") long queryStart,
            @Cast("const int32_t*") long seqLens, @Cast("int64_t") long numSeqs, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numQHeads, @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim,
            @Cast("int64_t") long blockSize, @Cast("int64_t") long numBlocks, float scale);

    public static native int kiln_cpu_attention(@Cast("float*") long out, @Cast("int64_t") long outStride,
            @Cast("const float*") long q, @Cast("int64_t") long qStride, @Cast("const float*") long kCache,
            @Cast("const float*") long vCache, @Cast("const int32_t*") long blockTables,
            @Cast("int64_t") long maxBlocksPerSeq, @Cast("const int32_t*") long queryStart,
            @Cast("const int32_t*") long seqLens, @Cast("int64_t") long numSeqs, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numQHeads, @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim,
            @Cast("int64_t") long blockSize, @Cast("int64_t") long numBlocks, float scale);

    public static native int kiln_cpu_gather_rows(@Cast("float*") long out, @Cast("const float*") long in,
            @Cast("int64_t") long inStride, @Cast("const int32_t*") long rows, @Cast("int64_t") long numOut,
            @Cast("int64_t") long numIn, @Cast("int64_t") long dim);

    public static native int kiln_cpu_argmax(@Cast("const float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("int32_t*") long outIds, @Cast("float*") long outLogprobs);

    public static native int kiln_cpu_sample(@Cast("const float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("const int32_t*") long rows, @Cast("uint32_t*") long penalties,
            @Cast("int64_t") long penaltyRows, @Cast("int32_t*") long outIds, @Cast("int32_t*") long outLogprobs);

    public static native int kiln_cpu_reset_penalty_row(@Cast("uint32_t*") long penalties,
            @Cast("int64_t") long penaltyRows, @Cast("int64_t") long vocab, @Cast("int64_t") long row,
            @Cast("const int32_t*") long tokens, @Cast("int64_t") long numPrompt, @Cast("int64_t") long numOutput,
            @Cast("int64_t") long numSuppressed);

    public static native int kiln_cpu_mask_logits(@Cast("float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("const int32_t*") long masks, @Cast("const int32_t*") long rows,
            @Cast("int64_t") long numRows);

    public static native int kiln_cpu_add_logit_bias(@Cast("float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("const int32_t*") long entries, @Cast("int64_t") long count);
}
