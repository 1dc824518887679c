// Attention for head sizes the tensor-core kernels are not built for (any head_dim <= 256: 16, 32,
// 80, 96, ...): one block per (query token, q head), fp32 throughout. Scores of a tile of context
// tokens go to shared memory, the tile's softmax is folded into a running maximum and sum, and
// thread d accumulates output element d. Each q head reads its K/V on its own (no sharing across
// a GQA group, no tensor cores): a correct fallback, not a fast path.
#include "attention_generic.h"
#include "common.cuh"

namespace kiln {

constexpr int kGenericThreads = 256;  // >= head_dim: thread d owns output element d
constexpr int kGenericTile = 512;     // context tokens scored per pass

template <typename T>
__global__ void __launch_bounds__(kGenericThreads) attention_generic_kernel(const GenericAttentionParams p) {
  __shared__ float s_q[kGenericMaxHeadDim];
  __shared__ float s_p[kGenericTile];
  __shared__ float s_scratch[32];
  const int64_t token = blockIdx.x;
  const int head = blockIdx.y;
  const int tid = threadIdx.x;

  // The token's sequence and position: decode has one token per sequence; a packed batch finds
  // the sequence whose query rows hold the token.
  int64_t seq = token, query_len = 1, row = 0;
  if (p.query_start != nullptr) {
    int64_t lo = 0, hi = p.num_seqs - 1;
    while (lo < hi) {  // the last sequence starting at or before the token
      const int64_t mid = (lo + hi + 1) / 2;
      if (p.query_start[mid] <= token) lo = mid;
      else hi = mid - 1;
    }
    seq = lo;
    query_len = p.query_start[seq + 1] - p.query_start[seq];
    row = token - p.query_start[seq];
  }
  // NOTE: clamped to the block table's capacity so that a bad length cannot index past it.
  const int64_t seq_len = min(static_cast<int64_t>(p.seq_lens[seq]), p.max_blocks_per_seq << p.log2_block_size);
  const int64_t context = seq_len - query_len + row + 1;  // causal: positions 0 ..= the token's

  const int kv_head = head / p.group;
  const T* q = static_cast<const T*>(p.q) + token * p.q_stride + static_cast<int64_t>(head) * p.head_dim;
  if (tid < p.head_dim) s_q[tid] = to_float(q[tid]);
  const int32_t* table = p.block_tables + seq * p.max_blocks_per_seq;
  const int64_t slot_stride = p.num_kv_heads * p.head_dim;
  const T* k_cache = static_cast<const T*>(p.k_cache) + static_cast<int64_t>(kv_head) * p.head_dim;
  const T* v_cache = static_cast<const T*>(p.v_cache) + static_cast<int64_t>(kv_head) * p.head_dim;
  const int block_mask = (1 << p.log2_block_size) - 1;
  auto slot_of = [&](int64_t tok) {
    return (static_cast<int64_t>(table[tok >> p.log2_block_size]) << p.log2_block_size) + (tok & block_mask);
  };
  __syncthreads();

  float running_max = -INFINITY, running_sum = 0.0f, acc = 0.0f;
  for (int64_t start = 0; start < context; start += kGenericTile) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kGenericTile), context - start));
    float tile_max = -INFINITY;
    for (int i = tid; i < n; i += kGenericThreads) {
      const T* k = k_cache + slot_of(start + i) * slot_stride;
      float score = 0.0f;
      for (int d = 0; d < p.head_dim; ++d) score = fmaf(s_q[d], to_float(k[d]), score);
      score *= p.scale;
      s_p[i] = score;
      tile_max = fmaxf(tile_max, score);
    }
    tile_max = block_max(tile_max, s_scratch);
    const float new_max = fmaxf(running_max, tile_max);
    const float correction = running_max == -INFINITY ? 0.0f : __expf(running_max - new_max);
    float tile_sum = 0.0f;
    for (int i = tid; i < n; i += kGenericThreads) {
      const float e = __expf(s_p[i] - new_max);
      s_p[i] = e;
      tile_sum += e;
    }
    tile_sum = block_sum(tile_sum, s_scratch);  // its barriers also publish s_p
    running_sum = running_sum * correction + tile_sum;
    running_max = new_max;
    if (tid < p.head_dim) {
      acc *= correction;
      for (int i = 0; i < n; ++i) acc = fmaf(s_p[i], to_float(v_cache[slot_of(start + i) * slot_stride + tid]), acc);
    }
    __syncthreads();  // s_p is rewritten by the next tile
  }
  if (tid < p.head_dim) {
    T* out = static_cast<T*>(p.out) + token * p.out_stride + static_cast<int64_t>(head) * p.head_dim;
    out[tid] = from_float<T>(running_sum > 0.0f ? acc / running_sum : 0.0f);
  }
}

int run_attention_generic(int dtype, const GenericAttentionParams& p, int64_t num_tokens, int64_t num_q_heads,
                          cudaStream_t stream) {
  if (num_tokens == 0) return KILN_CUDA_OK;
  const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(num_q_heads));
  KILN_DISPATCH_ANY(dtype, "attention (generic head_dim)", {
    attention_generic_kernel<T><<<grid, kGenericThreads, 0, stream>>>(p);
    KILN_CHECK_LAUNCH("attention (generic head_dim)");
    return KILN_CUDA_OK;
  });
}

}  // namespace kiln
