package ai.kiln.backend.cuda;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of libkiln_cuda (cuda-kernels/include/kiln_cuda.h). Built only where the CUDA
 * kernels were built; loading it needs the CUDA runtime (libcudart.so.13) on the library path.
 * Device pointers and the stream travel as raw addresses ({@code long}); every launcher returns 0
 * or a negative status, and {@link #kiln_cuda_last_error()} says what was wrong.
 */
@Platform(include = "kiln_cuda.h", link = "kiln_cuda")
public final class KilnCuda {
    static {
        Loader.load();
    }

    private KilnCuda() {
    }

    /** Loads the native libraries (a no-op after the first call). */
    public static void ensureLoaded() {
        // The static initialiser did the work.
    }

    public static native @Cast("const char*") String kiln_cuda_last_error();

    public static native int kiln_cuda_device_count();

    public static native int kiln_cuda_profiler_start();

    public static native int kiln_cuda_profiler_stop();

    // ---- layer ops ---------------------------------------------------------------------------

    public static native int kiln_cuda_rms_norm(@Cast("void*") long out, @Cast("int64_t") long outStride,
            @Cast("const void*") long x, @Cast("int64_t") long xStride, @Cast("void*") long residual,
            @Cast("int64_t") long residualStride, @Cast("const void*") long weight, @Cast("int64_t") long rows,
            @Cast("int64_t") long dim, float eps, int dtype, @Cast("void*") long stream);

    public static native int kiln_cuda_head_rms_norm(@Cast("void*") long x, @Cast("int64_t") long tokenStride,
            @Cast("int64_t") long numTokens, @Cast("int64_t") long numHeads, @Cast("int64_t") long headDim,
            @Cast("const void*") long weight, float eps, int dtype, @Cast("void*") long stream);

    public static native int kiln_cuda_rotary(@Cast("void*") long q, @Cast("int64_t") long qStride,
            @Cast("int64_t") long numQHeads, @Cast("void*") long k, @Cast("int64_t") long kStride,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("const int32_t*") long positions,
            @Cast("int64_t") long numTokens, @Cast("const float*") long cosSin, @Cast("int64_t") long maxPosition,
            int isNeox, int dtype, @Cast("void*") long stream);

    public static native int kiln_cuda_write_kv_cache(@Cast("const void*") long k, @Cast("int64_t") long kStride,
            @Cast("const void*") long v, @Cast("int64_t") long vStride, @Cast("void*") long kCache,
            @Cast("void*") long vCache, @Cast("const int32_t*") long slotMapping, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long numSlots, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_rotary_write_kv_cache(@Cast("void*") long q, @Cast("int64_t") long qStride,
            @Cast("int64_t") long numQHeads, @Cast("const void*") long k, @Cast("int64_t") long kStride,
            @Cast("const void*") long v, @Cast("int64_t") long vStride, @Cast("void*") long kCache,
            @Cast("void*") long vCache, @Cast("const int32_t*") long slotMapping,
            @Cast("const int32_t*") long positions, @Cast("const float*") long cosSin,
            @Cast("int64_t") long maxPosition, int isNeox, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long numSlots, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_write_kv_cache_e4m3(@Cast("const void*") long k,
            @Cast("int64_t") long kStride, @Cast("const void*") long v, @Cast("int64_t") long vStride,
            @Cast("uint8_t*") long kCache, @Cast("uint8_t*") long vCache, @Cast("float*") long kScales,
            @Cast("float*") long vScales, @Cast("const int32_t*") long slotMapping, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long numSlots, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_rotary_write_kv_cache_e4m3(@Cast("void*") long q,
            @Cast("int64_t") long qStride, @Cast("int64_t") long numQHeads, @Cast("const void*") long k,
            @Cast("int64_t") long kStride, @Cast("const void*") long v, @Cast("int64_t") long vStride,
            @Cast("uint8_t*") long kCache, @Cast("uint8_t*") long vCache, @Cast("float*") long kScales,
            @Cast("float*") long vScales, @Cast("const int32_t*") long slotMapping,
            @Cast("const int32_t*") long positions, @Cast("const float*") long cosSin,
            @Cast("int64_t") long maxPosition, int isNeox, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long numSlots, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_silu_and_mul(@Cast("void*") long out, @Cast("const void*") long gateUp,
            @Cast("int64_t") long numTokens, @Cast("int64_t") long inter, int dtype, @Cast("void*") long stream);

    public static native int kiln_cuda_embedding(@Cast("void*") long out, @Cast("const void*") long table,
            @Cast("const int32_t*") long ids, @Cast("int64_t") long numTokens, @Cast("int64_t") long hidden,
            @Cast("int64_t") long vocab, int dtype, @Cast("void*") long stream);

    public static native int kiln_cuda_add_bias(@Cast("void*") long x, @Cast("int64_t") long xStride,
            @Cast("const void*") long bias, @Cast("int64_t") long rows, @Cast("int64_t") long dim, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_gather_rows(@Cast("void*") long out, @Cast("const void*") long in,
            @Cast("int64_t") long inStride, @Cast("const int32_t*") long rows, @Cast("int64_t") long numOut,
            @Cast("int64_t") long numIn, @Cast("int64_t") long dim, int dtype, @Cast("void*") long stream);

    // ---- attention ---------------------------------------------------------------------------

    public static native int kiln_cuda_attention_uses_tensor_cores(int dtype, @Cast("int64_t") long headDim);

    public static native int kiln_cuda_attention_prefill(@Cast("void*") long out, @Cast("int64_t") long outStride,
            @Cast("const void*") long q, @Cast("int64_t") long qStride, @Cast("const void*") long kCache,
            @Cast("const void*") long vCache, @Cast("const int32_t*") long blockTables,
            @Cast("int64_t") long maxBlocksPerSeq, @Cast("const int32_t*") long queryStart,
            @Cast("const int32_t*") long seqLens, @Cast("int64_t") long numSeqs, @Cast("int64_t") long numTokens,
            @Cast("int64_t") long maxQueryLen, @Cast("int64_t") long numQHeads, @Cast("int64_t") long numKvHeads,
            @Cast("int64_t") long headDim, @Cast("int64_t") long blockSize, @Cast("int64_t") long numBlocks,
            float scale, int dtype, @Cast("void*") long stream);

    public static native @Cast("int64_t") long kiln_cuda_attention_decode_workspace_size(
            @Cast("int64_t") long numSeqs, @Cast("int64_t") long numQHeads, @Cast("int64_t") long numKvHeads,
            @Cast("int64_t") long headDim, @Cast("int64_t") long maxSeqLen);

    public static native int kiln_cuda_attention_prefill_e4m3(@Cast("void*") long out,
            @Cast("int64_t") long outStride, @Cast("const void*") long q, @Cast("int64_t") long qStride,
            @Cast("const uint8_t*") long kCache, @Cast("const uint8_t*") long vCache,
            @Cast("const float*") long kScales, @Cast("const float*") long vScales,
            @Cast("const int32_t*") long blockTables, @Cast("int64_t") long maxBlocksPerSeq,
            @Cast("const int32_t*") long queryStart, @Cast("const int32_t*") long seqLens,
            @Cast("int64_t") long numSeqs, @Cast("int64_t") long numTokens, @Cast("int64_t") long maxQueryLen,
            @Cast("int64_t") long numQHeads, @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim,
            @Cast("int64_t") long blockSize, @Cast("int64_t") long numBlocks, float scale, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_attention_decode_e4m3(@Cast("void*") long out,
            @Cast("int64_t") long outStride, @Cast("const void*") long q, @Cast("int64_t") long qStride,
            @Cast("const uint8_t*") long kCache, @Cast("const uint8_t*") long vCache,
            @Cast("const float*") long kScales, @Cast("const float*") long vScales,
            @Cast("const int32_t*") long blockTables, @Cast("int64_t") long maxBlocksPerSeq,
            @Cast("const int32_t*") long seqLens, @Cast("int64_t") long numSeqs, @Cast("int64_t") long maxSeqLen,
            @Cast("int64_t") long numQHeads, @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim,
            @Cast("int64_t") long blockSize, @Cast("int64_t") long numBlocks, float scale,
            @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_attention_decode(@Cast("void*") long out, @Cast("int64_t") long outStride,
            @Cast("const void*") long q, @Cast("int64_t") long qStride, @Cast("const void*") long kCache,
            @Cast("const void*") long vCache, @Cast("const int32_t*") long blockTables,
            @Cast("int64_t") long maxBlocksPerSeq, @Cast("const int32_t*") long seqLens,
            @Cast("int64_t") long numSeqs, @Cast("int64_t") long maxSeqLen, @Cast("int64_t") long numQHeads,
            @Cast("int64_t") long numKvHeads, @Cast("int64_t") long headDim, @Cast("int64_t") long blockSize,
            @Cast("int64_t") long numBlocks, float scale, @Cast("void*") long workspace,
            @Cast("int64_t") long workspaceBytes, int dtype, @Cast("void*") long stream);

    // ---- skinny matrix products ----------------------------------------------------------------

    /** The most rows {@link #kiln_cuda_gemv} takes (KILN_CUDA_GEMV_MAX_ROWS). */
    public static final int KILN_CUDA_GEMV_MAX_ROWS = 4;

    public static native int kiln_cuda_gemv(@Cast("void*") long out, @Cast("int64_t") long outStride, int outDtype,
            @Cast("const void*") long x, @Cast("int64_t") long xStride, int gated, @Cast("const void*") long w,
            @Cast("const void*") long bias, @Cast("int64_t") long m, @Cast("int64_t") long n, @Cast("int64_t") long k,
            int dtype, @Cast("void*") long stream);

    // ---- FP8 (e4m3) --------------------------------------------------------------------------

    /** kiln_cuda_fp8_input: a scale per row from its largest magnitude, or one static scale. */
    public static final int KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN = 1;
    public static final int KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR = 2;

    /** The most token rows {@link #kiln_cuda_gemv_f8} takes (KILN_CUDA_GEMV_F8_MAX_ROWS). */
    public static final int KILN_CUDA_GEMV_F8_MAX_ROWS = 16;

    public static native int kiln_cuda_supports_fp8();

    public static native int kiln_cuda_quantize_e4m3(@Cast("uint8_t*") long xq, @Cast("float*") long scales,
            @Cast("const void*") long x, @Cast("int64_t") long xStride, int xDtype, int mode, float staticScale,
            float scaleUb, @Cast("int64_t") long m, @Cast("int64_t") long k, @Cast("void*") long stream);

    public static native int kiln_cuda_dequantize_e4m3(@Cast("void*") long out, @Cast("const uint8_t*") long w,
            @Cast("const float*") long scales, @Cast("int64_t") long rows, @Cast("int64_t") long cols, int dtype,
            @Cast("void*") long stream);

    public static native int kiln_cuda_gemv_f8(@Cast("void*") long out, @Cast("int64_t") long outStride,
            int outDtype, @Cast("const uint8_t*") long xq, @Cast("const float*") long xScales, int gated,
            @Cast("const uint8_t*") long w, @Cast("const float*") long wScales, @Cast("const void*") long bias,
            @Cast("int64_t") long m, @Cast("int64_t") long n, @Cast("int64_t") long k, int dtype,
            @Cast("void*") long stream);

    /** The most token rows {@link #kiln_cuda_gemm_f8_narrow} takes (KILN_CUDA_GEMM_F8_NARROW_MAX_ROWS). */
    public static final int KILN_CUDA_GEMM_F8_NARROW_MAX_ROWS = 128;

    public static native int kiln_cuda_supports_gemm_f8_narrow();

    public static native @Cast("int64_t") long kiln_cuda_gemm_f8_narrow_workspace_size(@Cast("int64_t") long m,
            @Cast("int64_t") long n, @Cast("int64_t") long k, int gated);

    public static native int kiln_cuda_gemm_f8_narrow(@Cast("void*") long out, @Cast("int64_t") long outStride,
            int outDtype, @Cast("const uint8_t*") long xq, @Cast("const float*") long xScales, int gated,
            @Cast("const uint8_t*") long w, @Cast("const float*") long wScales, @Cast("const void*") long bias,
            @Cast("int64_t") long m, @Cast("int64_t") long n, @Cast("int64_t") long k, int dtype,
            @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes, @Cast("void*") long stream);

    // ---- sampling ----------------------------------------------------------------------------

    public static native @Cast("int64_t") long kiln_cuda_argmax_workspace_size(@Cast("int64_t") long batch,
            @Cast("int64_t") long vocab);

    public static native int kiln_cuda_argmax(@Cast("const void*") long logits, @Cast("int64_t") long logitsStride,
            int logitsDtype, @Cast("int64_t") long batch, @Cast("int64_t") long vocab, @Cast("int32_t*") long outIds,
            @Cast("float*") long outLogprobs, @Cast("void*") long workspace, @Cast("int64_t") long workspaceBytes,
            @Cast("void*") long stream);

    public static native int kiln_cuda_sample(@Cast("const float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("const int32_t*") long rows, @Cast("uint32_t*") long penalties,
            @Cast("int64_t") long penaltyRows, @Cast("int32_t*") long outIds, @Cast("int32_t*") long outLogprobs,
            @Cast("void*") long stream);

    public static native int kiln_cuda_reset_penalty_row(@Cast("uint32_t*") long penalties,
            @Cast("int64_t") long penaltyRows, @Cast("int64_t") long vocab, @Cast("int64_t") long row,
            @Cast("const int32_t*") long tokens, @Cast("int64_t") long numPrompt, @Cast("int64_t") long numOutput,
            @Cast("int64_t") long numSuppressed, @Cast("void*") long stream);

    public static native int kiln_cuda_mask_logits(@Cast("float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("const int32_t*") long masks, @Cast("const int32_t*") long rows,
            @Cast("int64_t") long numRows, @Cast("void*") long stream);

    public static native int kiln_cuda_add_logit_bias(@Cast("float*") long logits, @Cast("int64_t") long batch,
            @Cast("int64_t") long vocab, @Cast("const int32_t*") long entries, @Cast("int64_t") long count,
            @Cast("void*") long stream);
}
