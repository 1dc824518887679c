// Decode attention (flash-decoding over the paged cache): parameters and the per-variant entry
// points, instantiated in generated/attention_decode_*.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kiln {

struct DecodeParams {
  void* out;             // [num_seqs, num_q_heads, head_dim], row stride out_stride
  const void* q;         // [num_seqs, num_q_heads, head_dim], row stride q_stride
  const void* k_cache;   // [num_blocks, block_size, num_kv_heads, head_dim] of T, or e4m3 codes
  const void* v_cache;   // [num_blocks, block_size, num_kv_heads, head_dim] of T, or e4m3 codes
  const float* k_scales;  // [num_blocks, block_size, num_kv_heads] (FP8 cache only)
  const float* v_scales;  // [num_blocks, block_size, num_kv_heads] (FP8 cache only)
  const int32_t* block_tables;  // [num_seqs, max_blocks_per_seq]
  const int32_t* seq_lens;      // [num_seqs]
  float* partial_out;    // [num_splits, num_seqs, num_q_heads, head_dim] (num_splits > 1)
  float* partial_lse;    // [num_splits, num_seqs, num_q_heads], log2 units (num_splits > 1)
  uint32_t* split_counters;  // [num_seqs, num_kv_heads * head_groups], zero between calls (num_splits > 1)
  int64_t out_stride, q_stride, max_blocks_per_seq;
  int64_t num_seqs, num_q_heads, num_kv_heads;
  int group;             // q heads per kv head
  int head_groups;       // ceil(group / 16): a block handles up to 16 q heads of one kv head
  int num_splits;        // blocks along the context
  int split_tokens;      // context tokens per split, a multiple of the stage size
  int log2_block_size;
  float scale_log2;      // softmax scale * log2(e)
};

// Context tokens a decode block loads per pipeline stage (16 per warp).
constexpr int kDecodeStageTokens = 64;
constexpr int kDecodeThreads = 128;
// Most context splits of one sequence (the merge keeps their weights in shared memory).
constexpr int kDecodeMaxSplits = 128;

// kFp8: the cache holds e4m3 codes with a scale per (slot, KV head) row (k_scales, v_scales).
template <typename T, int kHeadDim, bool kFp8>
int run_attention_decode(const DecodeParams& p, cudaStream_t stream);

// Blocks of the split kernel that fit on one multiprocessor (cached per variant).
template <typename T, int kHeadDim, bool kFp8>
int decode_blocks_per_sm();

}  // namespace kiln
