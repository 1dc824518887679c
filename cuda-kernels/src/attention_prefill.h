// Prefill attention (causal, varlen, paged K/V): parameters and the per-variant entry points,
// instantiated in generated/attention_prefill_*.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kiln {

struct PrefillParams {
  void* out;                    // [num_tokens, num_q_heads, head_dim], token stride out_stride
  const void* q;                // [num_tokens, num_q_heads, head_dim], token stride q_stride
  const void* k_cache;          // [num_blocks, block_size, num_kv_heads, head_dim] of T, or e4m3 codes
  const void* v_cache;          // [num_blocks, block_size, num_kv_heads, head_dim] of T, or e4m3 codes
  const float* k_scales;        // [num_blocks, block_size, num_kv_heads] (FP8 cache only)
  const float* v_scales;        // [num_blocks, block_size, num_kv_heads] (FP8 cache only)
  const int32_t* block_tables;  // [num_seqs, max_blocks_per_seq]
  const int32_t* query_start;   // [num_seqs + 1]
  const int32_t* seq_lens;      // [num_seqs]
  int64_t out_stride, q_stride, max_blocks_per_seq;
  int64_t num_seqs, num_q_heads, num_kv_heads;
  int group;                    // q heads per kv head
  int log2_block_size;
  int num_m_blocks;             // query tiles of the longest sequence
  float scale_log2;             // softmax scale * log2(e)
};

// Portable tensor-core kernel (mma.sync, sm_80 and later); kFp8: the cache holds e4m3 codes with a
// scale per (slot, KV head) row (k_scales, v_scales).
template <typename T, int kHeadDim, bool kFp8>
int run_attention_prefill_mma(PrefillParams p, int64_t max_query_len, cudaStream_t stream);

// Hopper kernel (wgmma, sm_90a); returns KILN_CUDA_ERR_UNSUPPORTED where it has no variant.
template <typename T, int kHeadDim>
int run_attention_prefill_sm90(PrefillParams p, int64_t max_query_len, cudaStream_t stream);

}  // namespace kiln
