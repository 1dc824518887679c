// Kiln CPU backend: the C ABI that the Java binding (ai.kiln.backend.cpu.KilnCpu) calls.
//
// Every op works on caller-owned memory described by plain pointers, sizes and row strides
// (in elements). Activations, K/V cache and logits are fp32; weights may be fp32, fp16 or bf16, or
// int8 or e4m3 with an fp32 scale per row.
// Every function returns KILN_OK or a negative status and sets a thread-local message that
// kiln_last_error() returns. Functions check every index they read through (token ids, slots,
// block ids, sequence offsets) against the sizes they are given and refuse out-of-range ones,
// so a bad input from Java is an error, never a read or write out of bounds.
// Native code makes no policy decisions: what to run, with which sizes, comes from Java.
#ifndef KILN_CPU_H
#define KILN_CPU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kiln_status {
  KILN_OK = 0,
  KILN_ERR_INVALID_ARGUMENT = -1,
  KILN_ERR_OUT_OF_RANGE = -2,
  KILN_ERR_IO = -3,
  KILN_ERR_OUT_OF_MEMORY = -4,
  KILN_ERR_UNSUPPORTED = -5,
};

// Element types, the same numbering as ai.kiln.tensor.DType.
enum kiln_dtype {
  KILN_F32 = 0,
  KILN_F16 = 1,
  KILN_BF16 = 2,
  KILN_I32 = 3,
  KILN_I64 = 4,
  KILN_I8 = 5,
  KILN_F8_E4M3 = 6,
};

// Message of the last failed call on this thread ("" if none).
const char* kiln_last_error(void);

// ---- memory -----------------------------------------------------------------------------------

// Maps a whole file read-only. *size_out gets its length in bytes. Returns NULL on failure.
void* kiln_map_file(const char* path, int64_t* size_out);
int kiln_unmap_file(void* address, int64_t size);

// 64-byte aligned host memory. Returns NULL on failure.
void* kiln_cpu_alloc(int64_t bytes);
void kiln_cpu_free(void* address);

// Plain byte copy (the binding also passes Java arrays through it).
int kiln_cpu_copy(void* dst, const void* src, int64_t bytes);

// Copies n elements converting between dtypes (any of f32/f16/bf16 to any of them).
int kiln_cpu_convert(void* dst, int dst_dtype, const void* src, int src_dtype, int64_t n);

// Index of the first NaN or infinite element of src (f32/f16/bf16, or e4m3's NaN bytes), -1 if all
// are finite.
int64_t kiln_cpu_find_non_finite(const void* src, int dtype, int64_t n);

// Threads every op runs on, for the whole process (0: one per processor OpenMP sees).
void kiln_cpu_set_num_threads(int num_threads);
int kiln_cpu_get_num_threads(void);

// ---- layer ops ---------------------------------------------------------------------------------

// out[t, :] = table[ids[t], :]
//   out:   [num_tokens, hidden] fp32
//   table: [vocab, hidden] table_dtype
//   ids:   [num_tokens] int32, each in [0, vocab)
int kiln_cpu_embedding(float* out, const void* table, int table_dtype, const int32_t* ids,
                       int64_t num_tokens, int64_t hidden, int64_t vocab);

// RMSNorm, optionally fused with the residual add:
//   residual == NULL: out[r] = x[r] / rms(x[r]) * weight
//   residual != NULL: residual[r] += x[r]; out[r] = residual[r] / rms(residual[r]) * weight
//   out, x, residual: [rows, dim] fp32 with row strides (elements); out may alias x.
//   weight: [dim] weight_dtype
int kiln_cpu_rms_norm(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                      float* residual, int64_t residual_stride, const void* weight,
                      int weight_dtype, int64_t rows, int64_t dim, float eps);

// Per-head RMSNorm in place (Qwen3's q_norm / k_norm):
//   x: [num_tokens, num_heads, head_dim] fp32, row stride token_stride (per token)
//   weight: [head_dim] weight_dtype
int kiln_cpu_head_rms_norm(float* x, int64_t token_stride, int64_t num_tokens, int64_t num_heads,
                           int64_t head_dim, const void* weight, int weight_dtype, float eps);

// Rotary embedding in place on q and k (either may be NULL).
//   q: [num_tokens, num_q_heads, head_dim] fp32, row stride q_stride (per token)
//   k: [num_tokens, num_kv_heads, head_dim] fp32, row stride k_stride
//   positions: [num_tokens] int32, each in [0, max_position)
//   cos_sin: [max_position, head_dim] fp32: cos of the head_dim/2 frequencies, then their sin
//   is_neox: 1 rotates pairs (i, i + head_dim/2) (HF Llama "rotate_half"); 0 rotates
//            interleaved pairs (2i, 2i+1) (original Llama / GPT-J).
int kiln_cpu_rotary(float* q, int64_t q_stride, int64_t num_q_heads, float* k,
                    int64_t k_stride, int64_t num_kv_heads, int64_t head_dim,
                    const int32_t* positions, int64_t num_tokens, const float* cos_sin,
                    int64_t max_position, int is_neox);

// out = x @ w^T (+ bias), fp32 accumulation.
//   out:  [m, n] fp32, row stride out_stride
//   x:    [m, k] fp32, row stride x_stride
//   w:    [n, k] w_dtype (row-major, as stored by HF linear layers)
//   bias: [n] bias_dtype or NULL
int kiln_cpu_gemm(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                  const void* w, int w_dtype, const void* bias, int bias_dtype, int64_t m,
                  int64_t n, int64_t k);

// out = (x @ q^T) * scales (+ bias) over int8 weights with one scale per row (w ~ q * scale),
// fp32 accumulation.
//   w:        [n, k] int8, row-major
//   w_scales: [n] fp32
//   the rest as kiln_cpu_gemm
int kiln_cpu_gemm_i8(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                     const int8_t* w, const float* w_scales, const void* bias, int bias_dtype,
                     int64_t m, int64_t n, int64_t k);

// Quantises each row symmetrically to int8: scales[r] = max |src[r, :]| / 127,
// dst[r, c] = round(src[r, c] / scales[r]) (an all-zero row: scale 0). Refuses a NaN or infinity.
//   dst: [rows, cols] int8; scales: [rows] fp32; src: [rows, cols] src_dtype (f32/f16/bf16)
int kiln_cpu_quantize_i8_rows(int8_t* dst, float* scales, const void* src, int src_dtype,
                              int64_t rows, int64_t cols);

// ---- FP8 (e4m3) -------------------------------------------------------------------------------
//
// e4m3 is the "e4m3fn" of torch.float8_e4m3fn and the OCP FP8 format: 1 sign, 4 exponent (bias 7)
// and 3 mantissa bits; normals (1 + m/8) * 2^(e - 7), subnormals (e = 0) m * 2^-9; no infinities;
// 0x7f and 0xff are NaN; the largest finite magnitude is 448 (0x7e).
//
// Conversion from fp32 (every FP8 op here rounds this way, and the CUDA ops must match it):
// round to nearest, ties to even (in the subnormal range too); magnitudes above 448, infinity
// included, saturate to +-448 (as CUDA's __NV_SATFINITE does: torch's plain cast would give NaN);
// NaN stays NaN (0x7f or 0xff: the sign of a NaN is not specified, CUDA's conversion gives 0x7f),
// so a NaN is never hidden as a finite value; -0 stays -0.
int kiln_cpu_f32_to_e4m3(uint8_t* dst, const float* src, int64_t n);
int kiln_cpu_e4m3_to_f32(float* dst, const uint8_t* src, int64_t n);

// How the FP8 GEMM quantises its input activations (x).
enum kiln_fp8_input {
  // Weight-only (W8A16): x is multiplied as given, scale 1.
  KILN_FP8_INPUT_NONE = 0,
  // A scale per row: amax = max |x[i, :]| (NaN if the row holds a NaN), min(amax, scale_ub) when
  // scale_ub > 0 (fbgemm's activation_scale_ub), scale[i] = amax / 448.
  KILN_FP8_INPUT_DYNAMIC_PER_TOKEN = 1,
  // One scale for every row, the checkpoint's input_scale.
  KILN_FP8_INPUT_STATIC_PER_TENSOR = 2,
};

// Quantises activation rows as kiln_cpu_gemm_f8 does: xq[i, c] = e4m3(x[i, c] * (1 / scale[i])),
// the fp32 reciprocal rounded first, then the product rounded to e4m3 as above (values beyond the
// scale saturate at +-448); a row of scale 0 (all zeros) gives zeros; a scale below 2^-126
// (FLT_MIN) is raised to it, so that its reciprocal is finite. With KILN_FP8_INPUT_NONE, xq = x
// and scale 1. A row with a NaN comes out NaN in the GEMM; an infinity does too with a dynamic
// scale and no bound, and saturates to +-448 (a finite result) under a bound or a static scale.
//   xq: [m, k] fp32 holding e4m3 values (unscaled); scales: [m] fp32; x: [m, k] fp32, stride x_stride
//   static_scale: the per-tensor scale (> 0, finite) for KILN_FP8_INPUT_STATIC_PER_TENSOR, else ignored
//   scale_ub: the dynamic amax's upper bound, or <= 0 for none
int kiln_cpu_quantize_e4m3_inputs(float* xq, float* scales, const float* x, int64_t x_stride, int mode,
                                  float static_scale, float scale_ub, int64_t m, int64_t k);

// out[i, j] = acc[i, j] * (x_scale[i] * w_scales[j]) (+ bias[j]), with acc[i, j] the fp32 sum over
// c of xq[i, c] * e4m3_value(w[j, c]) (xq, x_scale: the inputs quantised by input_mode, as
// kiln_cpu_quantize_e4m3_inputs; each product of two e4m3 values is exact in fp32, only the sum's
// order rounds and it is unspecified). The weights stay one byte each and are decoded inside the
// GEMM.
//   w:        [n, k] e4m3 bytes, row-major; w_scales: [n] fp32 (w ~ value * scale row by row)
//   input_mode, input_scale, input_scale_ub: as kiln_cpu_quantize_e4m3_inputs's mode,
//             static_scale and scale_ub
//   the rest as kiln_cpu_gemm
int kiln_cpu_gemm_f8(float* out, int64_t out_stride, const float* x, int64_t x_stride, const uint8_t* w,
                     const float* w_scales, int input_mode, float input_scale, float input_scale_ub,
                     const void* bias, int bias_dtype, int64_t m, int64_t n, int64_t k);

// Quantises each row to e4m3 with a scale per row: scales[r] = max |src[r, :]| / 448 (at least
// 2^-126 for a row that is not all zeros), dst[r, c] = e4m3(src[r, c] * (1 / scales[r])) (an
// all-zero row: scale 0). Refuses a NaN or infinity.
//   dst: [rows, cols] e4m3 bytes; scales: [rows] fp32; src: [rows, cols] src_dtype (f32/f16/bf16)
int kiln_cpu_quantize_f8_rows(uint8_t* dst, float* scales, const void* src, int src_dtype, int64_t rows,
                              int64_t cols);

// The instruction set the GEMM kernels use on this CPU, e.g. "x86-64-v3 (AVX2)".
const char* kiln_cpu_gemm_kernels(void);

// Chooses the GEMM kernels (tests compare every level the CPU runs): 4 (AVX-512), 3 (AVX2),
// 0 (SSE2), or -1 for the widest this CPU runs (the default). KILN_ERR_UNSUPPORTED where the CPU
// lacks the level.
int kiln_cpu_set_gemm_level(int level);

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, inter + i]
//   out: [num_tokens, inter] fp32; gate_up: [num_tokens, 2 * inter] fp32
int kiln_cpu_silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t inter);

// Writes each token's K and V into its cache slot; slot -1 is padding and is skipped.
//   k, v: [num_tokens, num_kv_heads, head_dim] fp32, row strides k_stride / v_stride
//   k_cache, v_cache: [num_slots, num_kv_heads, head_dim] fp32 (num_slots = blocks * block_size)
//   slot_mapping: [num_tokens] int32, each -1 or in [0, num_slots)
int kiln_cpu_write_kv_cache(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                            float* k_cache, float* v_cache, const int32_t* slot_mapping,
                            int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim,
                            int64_t num_slots);

// kiln_cpu_write_kv_cache into an FP8 cache: each (token, KV head) row of K and of V stored as
// e4m3 codes with a scale of its own, kiln_cpu_quantize_e4m3_inputs' dynamic rule (scale = the
// row's largest magnitude / 448, raised to FLT_MIN where smaller but not 0, NaN where the row holds
// a NaN; codes of x * (1 / scale), the reciprocal rounded first; all zero for a zero row).
//   k_cache, v_cache: [num_slots, num_kv_heads, head_dim] e4m3 codes
//   k_scales, v_scales: [num_slots, num_kv_heads] fp32
int kiln_cpu_write_kv_cache_e4m3(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                                 uint8_t* k_cache, uint8_t* v_cache, float* k_scales, float* v_scales,
                                 const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
                                 int64_t head_dim, int64_t num_slots);

// Causal attention over the paged cache for a packed batch of sequences, prefill and decode
// alike. Sequence s owns query rows [query_start[s], query_start[s+1]) and has seq_lens[s]
// tokens of context in total, the new ones last, so its query row j sits at position
// seq_lens[s] - query_len + j and attends to positions 0 ..= that one. K/V of position p are
// in slot block_tables[s, p / block_size] * block_size + p % block_size.
//   out: [num_tokens, num_q_heads, head_dim] fp32, row stride out_stride
//   q:   [num_tokens, num_q_heads, head_dim] fp32, row stride q_stride
//   k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim] fp32
//   block_tables: [num_seqs, max_blocks_per_seq] int32, each used entry in [0, num_blocks)
//   query_start: [num_seqs + 1] int32, non-decreasing, query_start[num_seqs] = num_tokens
//   seq_lens: [num_seqs] int32, query_len <= seq_len <= max_blocks_per_seq * block_size
int kiln_cpu_attention(float* out, int64_t out_stride, const float* q, int64_t q_stride,
                       const float* k_cache, const float* v_cache, const int32_t* block_tables,
                       int64_t max_blocks_per_seq, const int32_t* query_start,
                       const int32_t* seq_lens, int64_t num_seqs, int64_t num_tokens,
                       int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                       int64_t block_size, int64_t num_blocks, float scale);

// kiln_cpu_attention over an FP8 cache (kiln_cpu_write_kv_cache_e4m3's): each cached element is
// e4m3_value(code) * the scale of its (slot, KV head) row, in fp32.
//   k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim] e4m3 codes
//   k_scales, v_scales: [num_blocks, block_size, num_kv_heads] fp32
int kiln_cpu_attention_e4m3(float* out, int64_t out_stride, const float* q, int64_t q_stride,
                            const uint8_t* k_cache, const uint8_t* v_cache, const float* k_scales,
                            const float* v_scales, const int32_t* block_tables, int64_t max_blocks_per_seq,
                            const int32_t* query_start, const int32_t* seq_lens, int64_t num_seqs,
                            int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                            int64_t block_size, int64_t num_blocks, float scale);

// out[i, :] = in[rows[i], :]
//   out: [num_out, dim] fp32; in: [num_in, dim] fp32 with row stride in_stride
//   rows: [num_out] int32, each in [0, num_in)
int kiln_cpu_gather_rows(float* out, const float* in, int64_t in_stride, const int32_t* rows,
                         int64_t num_out, int64_t num_in, int64_t dim);

// out_ids[b] = argmax_v logits[b, v] (the first on ties); out_logprobs[b] (may be NULL) gets
// log_softmax(logits[b])[out_ids[b]].
//   logits: [batch, vocab] fp32
int kiln_cpu_argmax(const float* logits, int64_t batch, int64_t vocab, int32_t* out_ids,
                    float* out_logprobs);

// Chooses one token per row by the sampling contract of kiln_sampling.h (docs/sampling.md): the
// penalties and the min-tokens mask, then greedy argmax, or temperature, min-p, top-k, top-p and a
// draw from the row's random bits. Log-probabilities are those of the raw logits.
//   logits:       [batch, vocab] fp32, read only
//   rows:         [batch, KILN_SAMPLE_ROW_WORDS] int32, each row's parameters
//   penalties:    [penalty_rows, vocab] uint32 penalty table (NULL when penalty_rows is 0); a row
//                 naming a table row reads it and then has its chosen id counted there
//   out_ids:      [batch] int32
//   out_logprobs: [batch, KILN_SAMPLE_LOGPROB_WORDS] int32, or NULL when no row asks; rows that
//                 ask for none are left untouched
int kiln_cpu_sample(const float* logits, int64_t batch, int64_t vocab, const int32_t* rows,
                    uint32_t* penalties, int64_t penalty_rows, int32_t* out_ids, int32_t* out_logprobs);

// Sets row `row` of a penalty table [penalty_rows, vocab] uint32: zero, then
// KILN_PENALTY_IN_PROMPT for tokens[0, num_prompt), one count per occurrence of an id in the
// next num_output, KILN_PENALTY_SUPPRESSED for the next num_suppressed. Ids must be in [0, vocab).
int kiln_cpu_reset_penalty_row(uint32_t* penalties, int64_t penalty_rows, int64_t vocab, int64_t row,
                               const int32_t* tokens, int64_t num_prompt, int64_t num_output,
                               int64_t num_suppressed);

// ---- structured output ----

// Sets logits[rows[m], v] to -inf for every id v whose bit is clear in mask row m (bit v % 32 of
// word v / 32), so that argmax and sampling never choose it.
//   logits: [batch, vocab] fp32, changed in place
//   masks:  [num_rows, ceil(vocab / 32)] int32 bit masks
//   rows:   [num_rows] int32, each in [0, batch)
int kiln_cpu_mask_logits(float* logits, int64_t batch, int64_t vocab, const int32_t* masks, const int32_t* rows,
                         int64_t num_rows);

// logits[entries[k, 0], entries[k, 1]] += bias k (the float whose bits are entries[k, 2]): OpenAI's
// logit_bias, added once per entry in entry order.
//   logits:  [batch, vocab] fp32, changed in place
//   entries: [count, 3] int32: row in [0, batch), id in [0, vocab), bias bits
int kiln_cpu_add_logit_bias(float* logits, int64_t batch, int64_t vocab, const int32_t* entries, int64_t count);

#ifdef __cplusplus
}
#endif

#endif  // KILN_CPU_H
