// Launcher of decode attention: checks sizes, picks the number of context splits and the
// variant (dtype x head_dim); the variants are instantiated in generated/attention_decode_*.cu.
#include <cmath>

#include "attention_decode.h"
#include "attention_generic.h"
#include "common.cuh"

namespace kiln {
namespace {

constexpr int kMaxSplits = kDecodeMaxSplits;
constexpr int64_t kMinSplitTokens = 256;  // NOTE: a split below this costs more in merge than it saves

int64_t max_splits_for(int64_t max_seq_len) {
  const int64_t by_len = (max_seq_len + kMinSplitTokens - 1) / kMinSplitTokens;
  return by_len < kMaxSplits ? (by_len > 1 ? by_len : 1) : kMaxSplits;
}

// Workspace: the split counters [num_seqs, num_kv_heads, head_groups], then the partial rows
// [splits, num_seqs, num_q_heads, head_dim] and their log-sum-exps [splits, num_seqs, num_q_heads].
int64_t counter_bytes_for(int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads) {
  const int64_t head_groups = (num_q_heads / num_kv_heads + 15) / 16;
  return align256(num_seqs * num_kv_heads * head_groups * 4);
}

int64_t workspace_bytes_for(int64_t splits, int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads,
                            int64_t head_dim) {
  if (splits <= 1) return 0;
  return counter_bytes_for(num_seqs, num_q_heads, num_kv_heads) +
         align256(splits * num_seqs * num_q_heads * head_dim * 4) + align256(splits * num_seqs * num_q_heads * 4);
}

// Flash-decoding's rule: no split when the blocks already fill the GPU; else the smallest split
// count whose last wave is at least 95% as full as the best one.
int choose_splits(int64_t base_blocks, int64_t max_seq_len, int sms, int blocks_per_sm) {
  const int64_t max_splits = max_splits_for(max_seq_len);
  const double slots = static_cast<double>(sms) * blocks_per_sm;
  if (max_splits <= 1 || base_blocks >= 0.8 * slots) return 1;
  double efficiency[kMaxSplits + 1] = {0};
  double best = 0.0;
  for (int64_t s = 1; s <= max_splits; ++s) {
    const double waves = base_blocks * s / slots;
    efficiency[s] = waves / std::ceil(waves);
    best = efficiency[s] > best ? efficiency[s] : best;
  }
  for (int64_t s = 1; s <= max_splits; ++s)
    if (efficiency[s] >= 0.95 * best) return static_cast<int>(s);
  return 1;
}

template <typename T, bool kFp8>
int blocks_per_sm_for(int64_t head_dim) {
  switch (head_dim) {
    case 64: return decode_blocks_per_sm<T, 64, kFp8>();
    case 128: return decode_blocks_per_sm<T, 128, kFp8>();
    case 256: return decode_blocks_per_sm<T, 256, kFp8>();
    default: return 0;
  }
}

// The split plan for these sizes on the current device: how many splits of how many tokens.
struct SplitPlan {
  int splits;
  int64_t split_tokens;
};

SplitPlan plan_splits(int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads, int64_t max_seq_len,
                      int blocks_per_sm) {
  const int64_t head_groups = (num_q_heads / num_kv_heads + 15) / 16;
  const int64_t base_blocks = num_seqs * num_kv_heads * head_groups;
  int splits = choose_splits(base_blocks, max_seq_len, current_sm_count(), blocks_per_sm);
  int64_t split_tokens = (max_seq_len + splits - 1) / splits;
  split_tokens = (split_tokens + kDecodeStageTokens - 1) / kDecodeStageTokens * kDecodeStageTokens;
  splits = static_cast<int>((max_seq_len + split_tokens - 1) / split_tokens);
  return {splits, split_tokens};
}

template <typename T, bool kFp8>
int dispatch_head_dim(DecodeParams& p, int64_t head_dim, int64_t max_seq_len, int64_t workspace_bytes,
                      void* workspace, cudaStream_t stream) {
  const int blocks_per_sm = blocks_per_sm_for<T, kFp8>(head_dim);
  if (blocks_per_sm == 0) {
    return cuda_fail(KILN_CUDA_ERR_UNSUPPORTED, "kiln_cuda_attention_decode: no kernel for head_dim %lld",
                     (long long)head_dim);
  }
  const SplitPlan plan = plan_splits(p.num_seqs, p.num_q_heads, p.num_kv_heads, max_seq_len, blocks_per_sm);
  const int splits = plan.splits;
  p.num_splits = splits;
  p.split_tokens = static_cast<int>(plan.split_tokens);
  if (splits > 1) {
    const int64_t need = workspace_bytes_for(splits, p.num_seqs, p.num_q_heads, p.num_kv_heads, head_dim);
    KILN_REQUIRE(workspace != nullptr && workspace_bytes >= need, KILN_CUDA_ERR_INVALID_ARGUMENT,
                 "kiln_cuda_attention_decode: workspace of %lld bytes is smaller than the %lld needed",
                 (long long)workspace_bytes, (long long)need);
    KILN_REQUIRE((reinterpret_cast<uintptr_t>(workspace) & 255u) == 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
                 "kiln_cuda_attention_decode: workspace must be 256-byte aligned");
    char* base = static_cast<char*>(workspace);
    p.split_counters = reinterpret_cast<uint32_t*>(base);
    base += counter_bytes_for(p.num_seqs, p.num_q_heads, p.num_kv_heads);
    p.partial_out = reinterpret_cast<float*>(base);
    p.partial_lse = reinterpret_cast<float*>(base + align256(splits * p.num_seqs * p.num_q_heads * head_dim * 4));
  }
  switch (head_dim) {
    case 64: return run_attention_decode<T, 64, kFp8>(p, stream);
    case 128: return run_attention_decode<T, 128, kFp8>(p, stream);
    default: return run_attention_decode<T, 256, kFp8>(p, stream);
  }
}

// Both entry points: k_scales / v_scales null for a cache of T, given for an FP8 one.
int attention_decode(const char* name, void* out, int64_t out_stride, const void* q, int64_t q_stride,
                     const void* k_cache, const void* v_cache, const float* k_scales, const float* v_scales,
                     const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                     int64_t num_seqs, int64_t max_seq_len, int64_t num_q_heads, int64_t num_kv_heads,
                     int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale, void* workspace,
                     int64_t workspace_bytes, int dtype, void* stream) {
  const bool fp8 = k_scales != nullptr;
  KILN_REQUIRE(out && q && k_cache && v_cache && block_tables && seq_lens, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: null pointer", name);
  KILN_REQUIRE(num_q_heads > 0 && num_kv_heads > 0 && num_q_heads % num_kv_heads == 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: %lld q heads are not a multiple of %lld kv heads", name,
               (long long)num_q_heads, (long long)num_kv_heads);
  KILN_REQUIRE(block_size == 16 || block_size == 32, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: block_size %lld is not supported (16, 32)", name, (long long)block_size);
  KILN_REQUIRE(num_seqs >= 0 && num_seqs <= 65535 && num_blocks > 0 && max_blocks_per_seq > 0 &&
                   max_seq_len >= 0 && max_seq_len <= max_blocks_per_seq * block_size && max_seq_len < (1ll << 30),
               KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: bad sizes (num_seqs %lld <= 65535, max_seq_len %lld <= max_blocks_per_seq * block_size)", name,
               (long long)num_seqs, (long long)max_seq_len);
  KILN_REQUIRE(out_stride >= num_q_heads * head_dim && q_stride >= num_q_heads * head_dim && out_stride % 8 == 0 &&
                   q_stride % 8 == 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: row strides must be >= heads * head_dim and multiples of 8", name);
  KILN_REQUIRE(aligned16(out) && aligned16(q) && aligned16(k_cache) && aligned16(v_cache),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: out, q and the caches must be 16-byte aligned", name);
  KILN_REQUIRE(num_kv_heads * (num_q_heads / num_kv_heads + 15) / 16 <= 65535, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: too many heads", name);
  KILN_REQUIRE(head_dim > 0 && head_dim <= kGenericMaxHeadDim, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: head_dim %lld is not supported (at most %d)", name, (long long)head_dim, kGenericMaxHeadDim);
  KILN_REQUIRE(!fp8 || v_scales != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null v_scales", name);
  KILN_REQUIRE(!fp8 || has_tensor_core_attention(dtype, head_dim), KILN_CUDA_ERR_UNSUPPORTED,
               "%s: an FP8 cache needs f16 or bf16 data and head_dim 64, 128 or 256 (got dtype %d, head_dim %lld)",
               name, dtype, (long long)head_dim);
  if (num_seqs == 0 || max_seq_len == 0) return KILN_CUDA_OK;
  if (!has_tensor_core_attention(dtype, head_dim)) {
    const GenericAttentionParams g{out, q, k_cache, v_cache, block_tables, nullptr, seq_lens, out_stride, q_stride,
                                   max_blocks_per_seq, num_seqs, num_kv_heads, static_cast<int>(head_dim),
                                   static_cast<int>(num_q_heads / num_kv_heads), block_size == 16 ? 4 : 5, scale};
    return run_attention_generic(dtype, g, num_seqs, num_q_heads, static_cast<cudaStream_t>(stream));
  }
  DecodeParams p{};
  p.out = out;
  p.q = q;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.k_scales = k_scales;
  p.v_scales = v_scales;
  p.block_tables = block_tables;
  p.seq_lens = seq_lens;
  p.out_stride = out_stride;
  p.q_stride = q_stride;
  p.max_blocks_per_seq = max_blocks_per_seq;
  p.num_seqs = num_seqs;
  p.num_q_heads = num_q_heads;
  p.num_kv_heads = num_kv_heads;
  p.group = static_cast<int>(num_q_heads / num_kv_heads);
  p.head_groups = (p.group + 15) / 16;
  p.log2_block_size = block_size == 16 ? 4 : 5;
  p.scale_log2 = scale * 1.4426950408889634f;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (fp8) {
    KILN_DISPATCH_HALF(dtype, name,
                       return dispatch_head_dim<T, true>(p, head_dim, max_seq_len, workspace_bytes, workspace, s););
  }
  KILN_DISPATCH_HALF(dtype, name,
                     return dispatch_head_dim<T, false>(p, head_dim, max_seq_len, workspace_bytes, workspace, s););
}

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int64_t kiln_cuda_attention_decode_workspace_size(int64_t num_seqs, int64_t num_q_heads,
                                                             int64_t num_kv_heads, int64_t head_dim,
                                                             int64_t max_seq_len) {
  if (num_seqs <= 0 || num_q_heads <= 0 || num_kv_heads <= 0 || num_q_heads % num_kv_heads != 0 || max_seq_len <= 0)
    return 0;
  // NOTE: the plan depends on the device (its multiprocessors) and on the cache's type (the
  // blocks that fit), not on the 16-bit type; the larger of the two caches' needs is returned.
  int64_t need = 0;
  for (const int blocks_per_sm :
       {blocks_per_sm_for<__nv_bfloat16, false>(head_dim), blocks_per_sm_for<__nv_bfloat16, true>(head_dim)}) {
    if (blocks_per_sm == 0) return 0;
    const SplitPlan plan = plan_splits(num_seqs, num_q_heads, num_kv_heads, max_seq_len, blocks_per_sm);
    const int64_t bytes = workspace_bytes_for(plan.splits, num_seqs, num_q_heads, num_kv_heads, head_dim);
    need = bytes > need ? bytes : need;
  }
  return need;
}

extern "C" int kiln_cuda_attention_decode(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                          const void* k_cache, const void* v_cache, const int32_t* block_tables,
                                          int64_t max_blocks_per_seq, const int32_t* seq_lens, int64_t num_seqs,
                                          int64_t max_seq_len, int64_t num_q_heads, int64_t num_kv_heads,
                                          int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                                          void* workspace, int64_t workspace_bytes, int dtype, void* stream) {
  return attention_decode("kiln_cuda_attention_decode", out, out_stride, q, q_stride, k_cache, v_cache, nullptr,
                          nullptr, block_tables, max_blocks_per_seq, seq_lens, num_seqs, max_seq_len, num_q_heads,
                          num_kv_heads, head_dim, block_size, num_blocks, scale, workspace, workspace_bytes, dtype,
                          stream);
}

extern "C" int kiln_cuda_attention_decode_e4m3(void* out, int64_t out_stride, const void* q, int64_t q_stride,
                                               const uint8_t* k_cache, const uint8_t* v_cache, const float* k_scales,
                                               const float* v_scales, const int32_t* block_tables,
                                               int64_t max_blocks_per_seq, const int32_t* seq_lens, int64_t num_seqs,
                                               int64_t max_seq_len, int64_t num_q_heads, int64_t num_kv_heads,
                                               int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                                               void* workspace, int64_t workspace_bytes, int dtype, void* stream) {
  const char* name = "kiln_cuda_attention_decode_e4m3";
  KILN_REQUIRE(k_scales != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null k_scales", name);
  return attention_decode(name, out, out_stride, q, q_stride, k_cache, v_cache, k_scales, v_scales, block_tables,
                          max_blocks_per_seq, seq_lens, num_seqs, max_seq_len, num_q_heads, num_kv_heads, head_dim,
                          block_size, num_blocks, scale, workspace, workspace_bytes, dtype, stream);
}
