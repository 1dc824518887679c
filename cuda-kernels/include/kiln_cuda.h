// Kiln CUDA kernels: the C ABI that the Java binding (ai.kiln.backend.cuda.KilnCuda) calls.
//
// Every launcher takes device pointers owned by Java, sizes, and the stream to run on; it checks
// the sizes it supports (head size, block size, dtype) and refuses others with a message that
// kiln_cuda_last_error() returns. Launchers never synchronise and never allocate.
//
// Conventions shared by every launcher:
//   - dtype is KILN_CUDA_F16 or KILN_CUDA_BF16 (KILN_CUDA_F32 too for the layer ops, the KV-cache
//     writes and attention, which then take plain element-wise paths) and applies to every
//     activation, weight and cache argument of the call; arithmetic, softmax and reductions run in
//     fp32.
//   - Strides count elements, not bytes. Vectorised kernels need 16-byte aligned pointers and
//     strides that are multiples of 8 elements; launchers check that where it matters.
//   - Layouts are those of the CPU twin (native/include/kiln_cpu.h): K/V cache
//     [num_blocks, block_size, num_kv_heads, head_dim], slot = block * block_size + offset,
//     slot -1 is padding; a packed batch has query_start[num_seqs + 1] and seq_lens[num_seqs],
//     the new tokens being the last query_len of the seq_len context.
//   - Index arrays live on the device, so launchers cannot check them. Block tables, query_start
//     and seq_lens are trusted: the Java side validates them (as the CPU twin does) before it calls.
//     Per-token indices are guarded in the kernels: a slot outside [0, num_slots) is skipped, a
//     token id or row outside its table gives a zero row, a position outside the cos/sin table
//     leaves the token unrotated; none of them reads or writes outside a buffer.
//   - Launch failures return KILN_CUDA_ERR_LAUNCH with the CUDA error's text; an earlier
//     asynchronous fault on the same context surfaces there too.
#ifndef KILN_CUDA_H
#define KILN_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kiln_cuda_status {
  KILN_CUDA_OK = 0,
  KILN_CUDA_ERR_INVALID_ARGUMENT = -1,
  KILN_CUDA_ERR_OUT_OF_RANGE = -2,
  KILN_CUDA_ERR_UNSUPPORTED = -5,
  KILN_CUDA_ERR_LAUNCH = -6,
};

// Element types, the numbering of kiln_cpu.h and ai.kiln.tensor.DType.
enum kiln_cuda_dtype {
  KILN_CUDA_F32 = 0,
  KILN_CUDA_F16 = 1,
  KILN_CUDA_BF16 = 2,
};

// Message of the last failed call on this thread ("" if none).
const char* kiln_cuda_last_error(void);

// Number of CUDA devices visible, 0 when there is no driver or device (never an error).
int kiln_cuda_device_count(void);

// Start or stop the profilers' collection (cudaProfilerStart / cudaProfilerStop): a profiler
// started with collection off (Nsight Compute's --profile-from-start off) records only the work
// between the two. 0, or a negative status.
int kiln_cuda_profiler_start(void);
int kiln_cuda_profiler_stop(void);

// ---- layer ops ---------------------------------------------------------------------------------

// RMSNorm, optionally fused with the residual add (the semantics of kiln_cpu_rms_norm):
//   residual == NULL: out[r] = x[r] / rms(x[r]) * weight
//   residual != NULL: residual[r] += x[r] (stored rounded to dtype);
//                     out[r] = residual[r] / rms(residual[r]) * weight
//   out, x, residual: [rows, dim] with row strides; out may alias x. weight: [dim]
int kiln_cuda_rms_norm(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                       void* residual, int64_t residual_stride, const void* weight, int64_t rows,
                       int64_t dim, float eps, int dtype, void* stream);

// Per-head RMSNorm in place (Qwen3 q/k norm): each [head_dim] row of x is normalised.
//   x: [num_tokens, num_heads, head_dim], token stride token_stride (a slice of the qkv buffer)
//   weight: [head_dim]; head_dim <= 512
int kiln_cuda_head_rms_norm(void* x, int64_t token_stride, int64_t num_tokens, int64_t num_heads,
                            int64_t head_dim, const void* weight, float eps, int dtype,
                            void* stream);

// Rotary embedding in place on q and k (either may be NULL), as kiln_cpu_rotary.
//   q: [num_tokens, num_q_heads, head_dim], token stride q_stride
//   k: [num_tokens, num_kv_heads, head_dim], token stride k_stride
//   positions: [num_tokens] int32; cos_sin: [max_position, head_dim] fp32, the cos of the
//   head_dim/2 frequencies then their sin. is_neox: 1 rotates (i, i + head_dim/2), 0 rotates
//   (2i, 2i+1). head_dim % 8 == 0.
int kiln_cuda_rotary(void* q, int64_t q_stride, int64_t num_q_heads, void* k, int64_t k_stride,
                     int64_t num_kv_heads, int64_t head_dim, const int32_t* positions,
                     int64_t num_tokens, const float* cos_sin, int64_t max_position, int is_neox,
                     int dtype, void* stream);

// Writes each token's K and V into its cache slot; slot -1 (any slot outside [0, num_slots)) is
// skipped.
//   k, v: [num_tokens, num_kv_heads, head_dim], token strides k_stride / v_stride
//   k_cache, v_cache: [num_slots, num_kv_heads, head_dim] (= [num_blocks, block_size, ...])
//   slot_mapping: [num_tokens] int32
int kiln_cuda_write_kv_cache(const void* k, int64_t k_stride, const void* v, int64_t v_stride,
                             void* k_cache, void* v_cache, const int32_t* slot_mapping,
                             int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim,
                             int64_t num_slots, int dtype, void* stream);

// Rotary fused with the cache write: q (may be NULL) is rotated in place, k is rotated as it is
// written to k_cache (k itself is left unchanged), v is copied to v_cache. Arguments as in
// kiln_cuda_rotary and kiln_cuda_write_kv_cache; a token whose slot is -1 still has q rotated.
int kiln_cuda_rotary_write_kv_cache(void* q, int64_t q_stride, int64_t num_q_heads, const void* k,
                                    int64_t k_stride, const void* v, int64_t v_stride,
                                    void* k_cache, void* v_cache, const int32_t* slot_mapping,
                                    const int32_t* positions, const float* cos_sin,
                                    int64_t max_position, int is_neox, int64_t num_tokens,
                                    int64_t num_kv_heads, int64_t head_dim, int64_t num_slots,
                                    int dtype, void* stream);

// The FP8 KV cache (kiln_cpu_write_kv_cache_e4m3's layout and rule): each (token, KV head) row of
// K and of V is stored as e4m3 codes with an fp32 scale of its own, the row's largest magnitude /
// 448 (raised to FLT_MIN where smaller but not 0, NaN where the row holds a NaN), codes of
// x * (1 / scale) rounded to nearest even (all zero for a zero row). k and v are f16 or bf16
// (dtype); head_dim a multiple of 8, at most 256.
//   k_cache, v_cache: [num_slots, num_kv_heads, head_dim] e4m3 codes
//   k_scales, v_scales: [num_slots, num_kv_heads] fp32
int kiln_cuda_write_kv_cache_e4m3(const void* k, int64_t k_stride, const void* v, int64_t v_stride,
                                  uint8_t* k_cache, uint8_t* v_cache, float* k_scales, float* v_scales,
                                  const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
                                  int64_t head_dim, int64_t num_slots, int dtype, void* stream);

// kiln_cuda_rotary_write_kv_cache into an FP8 cache: k is rotated, rounded to dtype (as
// kiln_cuda_rotary would leave it) and written as kiln_cuda_write_kv_cache_e4m3 writes it.
int kiln_cuda_rotary_write_kv_cache_e4m3(void* q, int64_t q_stride, int64_t num_q_heads, const void* k,
                                         int64_t k_stride, const void* v, int64_t v_stride,
                                         uint8_t* k_cache, uint8_t* v_cache, float* k_scales,
                                         float* v_scales, const int32_t* slot_mapping,
                                         const int32_t* positions, const float* cos_sin,
                                         int64_t max_position, int is_neox, int64_t num_tokens,
                                         int64_t num_kv_heads, int64_t head_dim, int64_t num_slots,
                                         int dtype, void* stream);

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, inter + i]
//   out: [num_tokens, inter]; gate_up: [num_tokens, 2 * inter]
int kiln_cuda_silu_and_mul(void* out, const void* gate_up, int64_t num_tokens, int64_t inter,
                           int dtype, void* stream);

// out[t, :] = table[ids[t], :] (a zero row for an id outside [0, vocab))
//   out: [num_tokens, hidden]; table: [vocab, hidden]; ids: [num_tokens] int32
int kiln_cuda_embedding(void* out, const void* table, const int32_t* ids, int64_t num_tokens,
                        int64_t hidden, int64_t vocab, int dtype, void* stream);

// x[r, :] += bias in place.  x: [rows, dim] with row stride x_stride; bias: [dim]
int kiln_cuda_add_bias(void* x, int64_t x_stride, const void* bias, int64_t rows, int64_t dim,
                       int dtype, void* stream);

// out[i, :] = in[rows[i], :] (a zero row for an index outside [0, num_in))
//   out: [num_out, dim]; in: [num_in, dim] with row stride in_stride; rows: [num_out] int32
int kiln_cuda_gather_rows(void* out, const void* in, int64_t in_stride, const int32_t* rows,
                          int64_t num_out, int64_t num_in, int64_t dim, int dtype, void* stream);

// ---- skinny matrix products (decode) -------------------------------------------------------------

// The most rows kiln_cuda_gemv takes; larger products belong to a GEMM library.
#define KILN_CUDA_GEMV_MAX_ROWS 4

// gated == 0: out[r, c] = sum_i x[r, i] * w[c, i] (+ bias[c])
//   w: [n, k]
// gated == 1: the MLP's gate/up projection and kiln_cuda_silu_and_mul in one pass:
//   out[r, c] = silu(g) * u, g = x[r] . w[c] and u = x[r] . w[n + c] each rounded to dtype first
//   w: [2n, k] (the gate rows, then the up rows)
// fp32 accumulation, rounded once to out_dtype.
//   out: [m, n] of out_dtype (dtype or F32), row stride out_stride; x: [m, k], row stride
//   x_stride; w rows contiguous; bias: [n] of dtype or NULL. F32 output takes neither a bias nor
//   the gated form. m <= KILN_CUDA_GEMV_MAX_ROWS; k % 8 == 0; x and w 16-byte aligned;
//   x_stride % 8 == 0.
int kiln_cuda_gemv(void* out, int64_t out_stride, int out_dtype, const void* x, int64_t x_stride,
                   int gated, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                   int dtype, void* stream);

// ---- FP8 (e4m3) ---------------------------------------------------------------------------------
//
// e4m3 is kiln_cpu.h's (torch.float8_e4m3fn), and every conversion rounds as kiln_cpu_f32_to_e4m3
// does (CUDA's __NV_SATFINITE conversion: nearest even, +-448 past the range, NaN kept). The FP8
// ops need compute capability 9.0 or later (Hopper) and refuse older devices.

// How kiln_cuda_quantize_e4m3 takes a row's scale (the numbering of kiln_cpu.h's kiln_fp8_input).
enum kiln_cuda_fp8_input {
  KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN = 1,  // max |x[i, :]| / 448, clamped to scale_ub when > 0
  KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR = 2,  // static_scale for every row
};

// Quantises rows as kiln_cpu_quantize_e4m3_inputs does: scales[i] as the mode says (a NaN in the
// row gives a NaN scale; a scale below 2^-126 is raised to it), xq[i, c] = e4m3(x[i, c] * (1 /
// scales[i])) with the fp32 reciprocal rounded first; a row of scale 0 gives zeros. Codes equal
// the CPU's bit for bit, except that a NaN's sign is not specified. It also quantises float weights row by row at load
// (the dynamic mode is kiln_cpu_quantize_f8_rows's rule; that function refuses a NaN or infinity,
// so the caller checks the scales).
//   xq: [m, k] e4m3 bytes, row stride k; scales: [m] f32; x: [m, k] of x_dtype (f32, f16 or bf16),
//   row stride x_stride
int kiln_cuda_quantize_e4m3(uint8_t* xq, float* scales, const void* x, int64_t x_stride, int x_dtype, int mode,
                            float static_scale, float scale_ub, int64_t m, int64_t k, void* stream);

// out[r, c] = dtype(e4m3_value(w[r, c]) * scales[r]): the float copy a weight-only FP8 product of
// many rows multiplies through cuBLAS.
//   out: [rows, cols] of dtype (f32, f16 or bf16); w: [rows, cols] e4m3; scales: [rows] f32
int kiln_cuda_dequantize_e4m3(void* out, const uint8_t* w, const float* scales, int64_t rows, int64_t cols,
                              int dtype, void* stream);

// The most token rows kiln_cuda_gemv_f8 takes; larger products belong to kiln_cuda_gemm_f8_narrow
// (Hopper) or cuBLASLt's FP8 GEMM.
#define KILN_CUDA_GEMV_F8_MAX_ROWS 16

// The skinny FP8 product of decode steps, kiln_cpu_gemm_f8 over inputs already quantised (by
// kiln_cuda_quantize_e4m3), on the tensor cores:
// gated == 0: out[r, c] = acc(r, c) * (x_scales[r] * w_scales[c]) (+ bias[c]), acc(r, c) the fp32
//   sum over i of e4m3_value(xq[r, i]) * e4m3_value(w[c, i]) (each product exact, the order of the
//   sum unspecified); w: [n, k], w_scales: [n]
// gated == 1: an MLP's gate/up projection and kiln_cuda_silu_and_mul in one pass: g = acc(r, c)
//   and u = acc(r, n + c), each scaled as above and rounded to dtype, out[r, c] = silu(g) * u;
//   w: [2n, k] (the gate rows, then the up rows), w_scales: [2n]
//   out: [m, n] of out_dtype (dtype, or F32 without a bias or the gated form), row stride
//   out_stride; xq: [m, k] e4m3, row stride k; x_scales: [m] f32; bias: [n] of dtype or NULL;
//   dtype: the activation type (f32, f16 or bf16). m <= KILN_CUDA_GEMV_F8_MAX_ROWS; k % 64 == 0;
//   xq and w 16-byte aligned.
int kiln_cuda_gemv_f8(void* out, int64_t out_stride, int out_dtype, const uint8_t* xq, const float* x_scales,
                      int gated, const uint8_t* w, const float* w_scales, const void* bias, int64_t m, int64_t n,
                      int64_t k, int dtype, void* stream);

// Whether this device runs the FP8 ops (compute capability 9.0 or later): 1 or 0.
int kiln_cuda_supports_fp8(void);

// The most token rows kiln_cuda_gemm_f8_narrow takes; more belong to cuBLASLt's FP8 GEMM.
#define KILN_CUDA_GEMM_F8_NARROW_MAX_ROWS 128

// Whether this device runs kiln_cuda_gemm_f8_narrow (a Hopper GPU, compute capability 9.x): 1 or 0.
int kiln_cuda_supports_gemm_f8_narrow(void);

// Bytes of device workspace kiln_cuda_gemm_f8_narrow needs for these sizes on the current device
// (0 where it splits no product).
int64_t kiln_cuda_gemm_f8_narrow_workspace_size(int64_t m, int64_t n, int64_t k, int gated);

// The FP8 product of decode steps of up to KILN_CUDA_GEMM_F8_NARROW_MAX_ROWS tokens on Hopper's
// wgmma, with kiln_cuda_gemv_f8's arguments and semantics (the fp32 sums' order unspecified, the
// same on every call of the same sizes) and k % 128 == 0. Where it splits K over several blocks it
// keeps fp32 partial sums in the workspace and the last block to finish adds them (one launch).
// The workspace must be zero-filled before its first use; every call leaves its counters at zero.
// Calls sharing one workspace must not run concurrently.
//   workspace: 256-byte aligned, workspace_bytes >= kiln_cuda_gemm_f8_narrow_workspace_size(), or
//   NULL where that is 0.
int kiln_cuda_gemm_f8_narrow(void* out, int64_t out_stride, int out_dtype, const uint8_t* xq, const float* x_scales,
                             int gated, const uint8_t* w, const float* w_scales, const void* bias, int64_t m,
                             int64_t n, int64_t k, int dtype, void* workspace, int64_t workspace_bytes, void* stream);

// ---- attention ---------------------------------------------------------------------------------

// Causal attention over the paged cache for a packed varlen batch (prefill, chunked prefill and
// mixed batches), the semantics of kiln_cpu_attention: sequence s owns query rows
// [query_start[s], query_start[s+1]); its row j sits at position seq_lens[s] - query_len + j and
// attends to positions 0 ..= that one, read from the cache (so a cached prefix or an earlier
// chunk is attended; the new tokens' K/V must already be written).
//   out: [num_tokens, num_q_heads, head_dim], token stride out_stride
//   q:   [num_tokens, num_q_heads, head_dim], token stride q_stride
//   k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]
//   block_tables: [num_seqs, max_blocks_per_seq] int32; query_start: [num_seqs + 1];
//   seq_lens: [num_seqs]. max_query_len bounds every query_len (it sizes the grid).
//   head_dim <= 256: 64, 128 and 256 run on the tensor cores, any other (and fp32 data) through a
//   plain fp32 fallback (correct, slow); block_size 16 or 32; num_q_heads a multiple of
//   num_kv_heads.
int kiln_cuda_attention_prefill(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                const void* k_cache, const void* v_cache,
                                const int32_t* block_tables, int64_t max_blocks_per_seq,
                                const int32_t* query_start, const int32_t* seq_lens,
                                int64_t num_seqs, int64_t num_tokens, int64_t max_query_len,
                                int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                                int64_t block_size, int64_t num_blocks, float scale, int dtype,
                                void* stream);

// kiln_cuda_attention_prefill over an FP8 cache (kiln_cuda_write_kv_cache_e4m3's): a cached
// element is its code's value times its row's scale. f16 / bf16 data and head_dim 64, 128 or 256
// only (the tensor-core kernels; it runs the portable one on every device).
//   k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim] e4m3 codes
//   k_scales, v_scales: [num_blocks, block_size, num_kv_heads] fp32
int kiln_cuda_attention_prefill_e4m3(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                     const uint8_t* k_cache, const uint8_t* v_cache,
                                     const float* k_scales, const float* v_scales,
                                     const int32_t* block_tables, int64_t max_blocks_per_seq,
                                     const int32_t* query_start, const int32_t* seq_lens,
                                     int64_t num_seqs, int64_t num_tokens, int64_t max_query_len,
                                     int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                                     int64_t block_size, int64_t num_blocks, float scale, int dtype,
                                     void* stream);

// 1 where the prefill and decode attention kernels take their tensor-core path for this dtype and
// head size, 0 where they run the plain fp32 fallback. The fallback indexes a batch from its first
// query row, so a caller that hands the prefill kernel the later sequences of a batch alone (the
// prompt chunks of a mixed step, after its decodes) may do so only where this is 1.
int kiln_cuda_attention_uses_tensor_cores(int dtype, int64_t head_dim);

// Bytes of device workspace that kiln_cuda_attention_decode needs for these sizes on the current
// device (the split count it picks depends on the device). 0 is a valid answer.
int64_t kiln_cuda_attention_decode_workspace_size(int64_t num_seqs, int64_t num_q_heads,
                                                  int64_t num_kv_heads, int64_t head_dim,
                                                  int64_t max_seq_len);

// Decode attention: one query token per sequence (its last position, seq_lens[s] - 1) over the
// paged cache; flash-decoding with the context split across blocks for long sequences, the
// fp32 partial results kept in the caller's workspace and merged by the last block to finish
// (one launch). The workspace must be zero-filled before its first use; every call leaves its
// counters at zero again.
//   out: [num_seqs, num_q_heads, head_dim], row stride out_stride
//   q:   [num_seqs, num_q_heads, head_dim], row stride q_stride
//   seq_lens: [num_seqs], each in [1, max_seq_len]; other arguments as for prefill.
//   workspace: 256-byte aligned, workspace_bytes >= kiln_cuda_attention_decode_workspace_size().
int kiln_cuda_attention_decode(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                               const void* k_cache, const void* v_cache,
                               const int32_t* block_tables, int64_t max_blocks_per_seq,
                               const int32_t* seq_lens, int64_t num_seqs, int64_t max_seq_len,
                               int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                               int64_t block_size, int64_t num_blocks, float scale,
                               void* workspace, int64_t workspace_bytes, int dtype, void* stream);

// kiln_cuda_attention_decode over an FP8 cache (as kiln_cuda_attention_prefill_e4m3); the same
// workspace (kiln_cuda_attention_decode_workspace_size covers both cache types).
int kiln_cuda_attention_decode_e4m3(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                    const uint8_t* k_cache, const uint8_t* v_cache,
                                    const float* k_scales, const float* v_scales,
                                    const int32_t* block_tables, int64_t max_blocks_per_seq,
                                    const int32_t* seq_lens, int64_t num_seqs, int64_t max_seq_len,
                                    int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                                    int64_t block_size, int64_t num_blocks, float scale,
                                    void* workspace, int64_t workspace_bytes, int dtype, void* stream);

// ---- sampling ----------------------------------------------------------------------------------
// logits: [batch, vocab] of logits_dtype (F32, F16 or BF16) with row stride logits_stride.

// Bytes of workspace kiln_cuda_argmax needs for `batch` rows (an upper bound).
int64_t kiln_cuda_argmax_workspace_size(int64_t batch, int64_t vocab);

// Greedy: out_ids[b] = argmax logits[b] (the first on ties); out_logprobs[b] (may be NULL) =
// log_softmax(logits[b])[out_ids[b]].
// The workspace (256-byte aligned, >= kiln_cuda_argmax_workspace_size bytes, zero-filled before
// its first use and left so by every call; batch <= 65535) lets each row split over several blocks.
int kiln_cuda_argmax(const void* logits, int64_t logits_stride, int logits_dtype, int64_t batch,
                     int64_t vocab, int32_t* out_ids, float* out_logprobs, void* workspace,
                     int64_t workspace_bytes, void* stream);

// The sampler of the contract in kiln_sampling.h (docs/sampling.md), the CUDA twin of
// kiln_cpu_sample with the same arguments, all device memory, and the same results: the chosen
// ids equal the CPU's for the same logits and rows. A row naming a penalty row outside the table
// samples without one (the rows are device memory the launcher does not read).
//   logits:       [batch, vocab] fp32, read only
//   rows:         [batch, KILN_SAMPLE_ROW_WORDS] int32
//   penalties:    [penalty_rows, vocab] uint32 or NULL; a row's chosen id is counted in its table row
//   out_ids:      [batch] int32
//   out_logprobs: [batch, KILN_SAMPLE_LOGPROB_WORDS] int32 or NULL
int kiln_cuda_sample(const float* logits, int64_t batch, int64_t vocab, const int32_t* rows,
                     uint32_t* penalties, int64_t penalty_rows, int32_t* out_ids, int32_t* out_logprobs,
                     void* stream);

// kiln_cpu_reset_penalty_row on the device (ids outside [0, vocab) are skipped).
int kiln_cuda_reset_penalty_row(uint32_t* penalties, int64_t penalty_rows, int64_t vocab, int64_t row,
                                const int32_t* tokens, int64_t num_prompt, int64_t num_output,
                                int64_t num_suppressed, void* stream);

// ---- structured output ----

// kiln_cpu_mask_logits on the device: logits[rows[m], v] = -inf where bit v % 32 of word v / 32
// of mask row m is clear; rows outside [0, batch) are skipped.
//   logits: [batch, vocab] fp32, in place; masks: [num_rows, ceil(vocab / 32)] int32;
//   rows: [num_rows] int32; num_rows <= 65535
int kiln_cuda_mask_logits(float* logits, int64_t batch, int64_t vocab, const int32_t* masks, const int32_t* rows,
                          int64_t num_rows, void* stream);

// kiln_cpu_add_logit_bias on the device; entries naming a row or id out of range are skipped, and
// the (row, id) pairs must be distinct (each entry is one thread's plain add).
//   logits: [batch, vocab] fp32, in place; entries: [count, 3] int32
int kiln_cuda_add_logit_bias(float* logits, int64_t batch, int64_t vocab, const int32_t* entries, int64_t count,
                             void* stream);

#ifdef __cplusplus
}
#endif

#endif  // KILN_CUDA_H
