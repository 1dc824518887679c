// Attention for head sizes the tensor-core kernels are not built for (any head_dim <= 256: 16, 32,
// 80, 96, ...), prefill and decode alike: a correct fallback, not a fast path (attention_generic.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kiln_cuda.h"

namespace kiln {

constexpr int kGenericMaxHeadDim = 256;

// Whether the tensor-core attention kernels (prefill and decode) cover this dtype and head size;
// everything else (fp32 data, other head sizes) takes the fallback.
inline bool has_tensor_core_attention(int dtype, int64_t head_dim) {
  return dtype != KILN_CUDA_F32 && (head_dim == 64 || head_dim == 128 || head_dim == 256);
}

struct GenericAttentionParams {
  void* out;                    // [num_tokens, num_q_heads, head_dim], token stride out_stride
  const void* q;                // [num_tokens, num_q_heads, head_dim], token stride q_stride
  const void* k_cache;          // [num_blocks, block_size, num_kv_heads, head_dim]
  const void* v_cache;          // [num_blocks, block_size, num_kv_heads, head_dim]
  const int32_t* block_tables;  // [num_seqs, max_blocks_per_seq]
  const int32_t* query_start;   // [num_seqs + 1]; nullptr for decode (token t is sequence t's last)
  const int32_t* seq_lens;      // [num_seqs]
  int64_t out_stride, q_stride, max_blocks_per_seq;
  int64_t num_seqs, num_kv_heads;
  int head_dim, group, log2_block_size;
  float scale;
};

// Runs the fallback over num_tokens query tokens (dtype: KILN_CUDA_F16 or KILN_CUDA_BF16).
int run_attention_generic(int dtype, const GenericAttentionParams& p, int64_t num_tokens, int64_t num_q_heads,
                          cudaStream_t stream);

}  // namespace kiln
