// Launcher of prefill attention: checks sizes and picks the variant: the wgmma kernel on Hopper
// (sm_90) for the head sizes it has, the portable mma.sync kernel elsewhere. The variants are
// instantiated in generated/attention_prefill_*.cu.
#include <cstdlib>
#include <cstring>

#include "attention_generic.h"
#include "attention_prefill.h"
#include "common.cuh"

namespace kiln {
namespace {

// KILN_CUDA_PREFILL=mma forces the portable kernel (for comparisons and tests).
bool hopper_path_allowed() {
  const char* force = std::getenv("KILN_CUDA_PREFILL");
  return force == nullptr || std::strcmp(force, "mma") != 0;
}

// NOTE: an FP8 cache takes the portable kernel on every device (the Hopper kernel reads its
// tiles with TMA into wgmma's layout, which has no place to widen codes).
template <typename T, int kHeadDim>
int run_variant(const PrefillParams& p, int64_t max_query_len, cudaStream_t stream) {
  if (p.k_scales != nullptr) return run_attention_prefill_mma<T, kHeadDim, true>(p, max_query_len, stream);
  if (current_cc_major() == 9 && hopper_path_allowed()) {
    const int status = run_attention_prefill_sm90<T, kHeadDim>(p, max_query_len, stream);
    if (status != KILN_CUDA_ERR_UNSUPPORTED) return status;
  }
  return run_attention_prefill_mma<T, kHeadDim, false>(p, max_query_len, stream);
}

template <typename T>
int dispatch_head_dim(const PrefillParams& p, int64_t head_dim, int64_t max_query_len, cudaStream_t stream) {
  switch (head_dim) {
    case 64: return run_variant<T, 64>(p, max_query_len, stream);
    case 128: return run_variant<T, 128>(p, max_query_len, stream);
    case 256: return run_variant<T, 256>(p, max_query_len, stream);
    default:
      return cuda_fail(KILN_CUDA_ERR_UNSUPPORTED, "kiln_cuda_attention_prefill: no kernel for head_dim %lld",
                       (long long)head_dim);
  }
}

// Both entry points: k_scales / v_scales null for a cache of T, given for an FP8 one.
int attention_prefill(const char* name, void* out, int64_t out_stride, const void* q, int64_t q_stride,
                      const void* k_cache, const void* v_cache, const float* k_scales, const float* v_scales,
                      const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* query_start,
                      const int32_t* seq_lens, int64_t num_seqs, int64_t num_tokens, int64_t max_query_len,
                      int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim, int64_t block_size,
                      int64_t num_blocks, float scale, int dtype, void* stream) {
  const bool fp8 = k_scales != nullptr;
  KILN_REQUIRE(!fp8 || v_scales != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null v_scales", name);
  KILN_REQUIRE(!fp8 || has_tensor_core_attention(dtype, head_dim), KILN_CUDA_ERR_UNSUPPORTED,
               "%s: an FP8 cache needs f16 or bf16 data and head_dim 64, 128 or 256 (got dtype %d, head_dim %lld)",
               name, dtype, (long long)head_dim);
  KILN_REQUIRE(out && q && k_cache && v_cache && block_tables && query_start && seq_lens,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null pointer", name);
  KILN_REQUIRE(num_q_heads > 0 && num_kv_heads > 0 && num_q_heads % num_kv_heads == 0 && num_q_heads <= 65535,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: %lld q heads are not a multiple of %lld kv heads", name,
               (long long)num_q_heads, (long long)num_kv_heads);
  KILN_REQUIRE(block_size == 16 || block_size == 32, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: block_size %lld is not supported (16, 32)", name, (long long)block_size);
  KILN_REQUIRE(num_seqs >= 0 && num_seqs <= 65535 && num_tokens >= 0 && num_tokens < (1ll << 31) &&
                   max_query_len >= 0 && max_query_len <= num_tokens && num_blocks > 0 && max_blocks_per_seq > 0 &&
                   max_blocks_per_seq * block_size < (1ll << 30),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes (num_seqs %lld, num_tokens %lld, max_query_len %lld)",
               name, (long long)num_seqs, (long long)num_tokens, (long long)max_query_len);
  KILN_REQUIRE(out_stride >= num_q_heads * head_dim && q_stride >= num_q_heads * head_dim && out_stride % 8 == 0 &&
                   q_stride % 8 == 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: token strides must be >= heads * head_dim and multiples of 8", name);
  KILN_REQUIRE(aligned16(out) && aligned16(q) && aligned16(k_cache) && aligned16(v_cache),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: out, q and the caches must be 16-byte aligned", name);
  KILN_REQUIRE(head_dim > 0 && head_dim <= kGenericMaxHeadDim, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: head_dim %lld is not supported (at most %d)", name, (long long)head_dim, kGenericMaxHeadDim);
  if (num_seqs == 0 || max_query_len == 0) return KILN_CUDA_OK;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (!has_tensor_core_attention(dtype, head_dim)) {
    const GenericAttentionParams g{out, q, k_cache, v_cache, block_tables, query_start, seq_lens, out_stride,
                                   q_stride, max_blocks_per_seq, num_seqs, num_kv_heads, static_cast<int>(head_dim),
                                   static_cast<int>(num_q_heads / num_kv_heads), block_size == 16 ? 4 : 5, scale};
    return run_attention_generic(dtype, g, num_tokens, num_q_heads, s);
  }
  PrefillParams p{};
  p.out = out;
  p.q = q;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.k_scales = k_scales;
  p.v_scales = v_scales;
  p.block_tables = block_tables;
  p.query_start = query_start;
  p.seq_lens = seq_lens;
  p.out_stride = out_stride;
  p.q_stride = q_stride;
  p.max_blocks_per_seq = max_blocks_per_seq;
  p.num_seqs = num_seqs;
  p.num_q_heads = num_q_heads;
  p.num_kv_heads = num_kv_heads;
  p.group = static_cast<int>(num_q_heads / num_kv_heads);
  p.log2_block_size = block_size == 16 ? 4 : 5;
  p.scale_log2 = scale * 1.4426950408889634f;
  KILN_DISPATCH_HALF(dtype, name, return dispatch_head_dim<T>(p, head_dim, max_query_len, s););
}

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int kiln_cuda_attention_uses_tensor_cores(int dtype, int64_t head_dim) {
  return has_tensor_core_attention(dtype, head_dim) ? 1 : 0;
}

extern "C" int kiln_cuda_attention_prefill(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                           const void* k_cache, const void* v_cache, const int32_t* block_tables,
                                           int64_t max_blocks_per_seq, const int32_t* query_start,
                                           const int32_t* seq_lens, int64_t num_seqs, int64_t num_tokens,
                                           int64_t max_query_len, int64_t num_q_heads, int64_t num_kv_heads,
                                           int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                                           int dtype, void* stream) {
  return attention_prefill("kiln_cuda_attention_prefill", out, out_stride, q, q_stride, k_cache, v_cache, nullptr,
                           nullptr, block_tables, max_blocks_per_seq, query_start, seq_lens, num_seqs, num_tokens,
                           max_query_len, num_q_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, dtype,
                           stream);
}

extern "C" int kiln_cuda_attention_prefill_e4m3(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                                const uint8_t* k_cache, const uint8_t* v_cache,
                                                const float* k_scales, const float* v_scales,
                                                const int32_t* block_tables, int64_t max_blocks_per_seq,
                                                const int32_t* query_start, const int32_t* seq_lens, int64_t num_seqs,
                                                int64_t num_tokens, int64_t max_query_len, int64_t num_q_heads,
                                                int64_t num_kv_heads, int64_t head_dim, int64_t block_size,
                                                int64_t num_blocks, float scale, int dtype, void* stream) {
  const char* name = "kiln_cuda_attention_prefill_e4m3";
  KILN_REQUIRE(k_scales != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null k_scales", name);
  return attention_prefill(name, out, out_stride, q, q_stride, k_cache, v_cache, k_scales, v_scales, block_tables,
                           max_blocks_per_seq, query_start, seq_lens, num_seqs, num_tokens, max_query_len,
                           num_q_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, dtype, stream);
}
