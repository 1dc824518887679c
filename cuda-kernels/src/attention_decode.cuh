// Decode attention device code: one block per (split of the context, kv head, <= 16 of its q
// heads, sequence). The block streams its K/V pages through a cp.async pipeline of
// kDecodeStageTokens-token stages; each of the 4 warps takes 16 tokens of a stage and runs
// S = Q K^T and O += P V on the tensor cores (mma.sync m16n8k16) with the group's q heads as the
// 16 rows, so every K/V byte is loaded once for all q heads that share it. The warps' online
// softmax states are merged through shared memory at the end. When the context spans several
// splits each block writes an fp32 partial result and its log-sum-exp, and the last block of the
// (sequence, kv head) to finish combines them, so decode is one launch whatever the length.
//
// Over an FP8 cache the stages hold e4m3 codes (half the bytes) and their rows' scales; each warp
// widens its 16 tokens to T in a buffer of its own (exact) and runs the same products, applying a
// token's K scale to its scores and its V scale to its probabilities (so the softmax sums stay the
// unscaled ones).
#pragma once

#include "attention_decode.h"
#include "common.cuh"
#include "e4m3.cuh"

namespace kiln {

template <int kHeadDim, bool kFp8>
struct DecodeTraits {
  static_assert(kHeadDim == 64 || kHeadDim == 128 || kHeadDim == 256,
                "decode attention supports head_dim 64, 128 and 256");
  static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row of T
  static constexpr int kCacheBytes = kFp8 ? 1 : 2;  // bytes of a cached element
  static constexpr int kCacheChunks = kHeadDim * kCacheBytes / 16;  // 16-byte chunks per cached row
  // NOTE: stages sized so that two or more blocks fit per SM with >= 64 KB of loads in flight
  // (an FP8 stage is half the bytes, so it affords more of them).
  // (FP8 at head_dim 256: 2 stages, so that the block fits the 163 KB an sm_80 block may have.)
  static constexpr int kStages = kFp8 ? (kHeadDim <= 128 ? 4 : 2) : (kHeadDim <= 64 ? 4 : (kHeadDim <= 128 ? 3 : 2));
  static constexpr int kStageBytes = kDecodeStageTokens * kHeadDim * kCacheBytes;  // K or V of one stage
  static constexpr int kScaleBytes = kFp8 ? kDecodeStageTokens * 4 : 0;  // K or V scales of one stage
  static constexpr int kQBytes = 16 * kHeadDim * 2;
  static constexpr int kWarps = kDecodeThreads / 32;
  // FP8: each warp's 16 tokens of K and V widened to T ([warps][2][16][head_dim]).
  static constexpr int kWideBytes = kFp8 ? kWarps * 2 * 16 * kHeadDim * 2 : 0;
  static constexpr int kSmemBytes = kQBytes + 2 * kStages * (kStageBytes + kScaleBytes) + kWideBytes;
  static_assert(kDecodeStageTokens == 16 * kWarps, "each warp takes 16 tokens of a stage");
  static_assert(!kFp8 || kDecodeThreads == 2 * kDecodeStageTokens, "a thread fetches each K and each V scale");
  // The final merges reuse the K stages (FP8: the widened tiles) for [warps][16][head_dim] fp32
  // (then the splits' weights, [16][kDecodeMaxSplits] and 16 totals) and the V stages for (m, l).
  static constexpr int kMergeBytes = kFp8 ? kWideBytes : kStages * kStageBytes;
  static_assert(kWarps * 16 * kHeadDim * 4 <= kMergeBytes, "merge scratch must fit");
  static_assert((16 * kDecodeMaxSplits + 16) * 4 <= kMergeBytes, "split weights must fit");
  static_assert(kWarps * 16 * 2 * 4 <= kStages * kStageBytes, "(m, l) must fit in the V stages");
};

template <typename T, int kHeadDim, bool kFp8>
__global__ void __launch_bounds__(kDecodeThreads) decode_split_kernel(const DecodeParams p) {
  using Tr = DecodeTraits<kHeadDim, kFp8>;
  constexpr int kChunks = Tr::kChunks;
  constexpr int kCacheChunks = Tr::kCacheChunks;
  constexpr int kStages = Tr::kStages;
  constexpr int kKSteps = kHeadDim / 16;
  constexpr int kDTiles = kHeadDim / 8;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sQ = smem;                                 // [16][head_dim] of T, swizzled
  uint8_t* sK = smem + Tr::kQBytes;                   // [stages][64 tokens][head_dim] cached K
  uint8_t* sV = sK + kStages * Tr::kStageBytes;       // [stages][64 tokens][head_dim] cached V
  float* sKScale = reinterpret_cast<float*>(sV + kStages * Tr::kStageBytes);  // [stages][64] (FP8)
  float* sVScale = sKScale + kStages * kDecodeStageTokens;                     // [stages][64] (FP8)
  uint8_t* sWide = reinterpret_cast<uint8_t*>(sVScale + kStages * kDecodeStageTokens);  // [warps][2][16][head_dim] of T (FP8)

  pdl_wait();
  pdl_launch_dependents();
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int split = blockIdx.x;
  const int kv_head = blockIdx.y / p.head_groups;
  const int hg = blockIdx.y % p.head_groups;
  const int64_t seq = blockIdx.z;
  // NOTE: clamped to the block table's capacity so that a bad length cannot index past it.
  const int seq_len = static_cast<int>(min(static_cast<int64_t>(p.seq_lens[seq]), p.max_blocks_per_seq << p.log2_block_size));
  const int start = split * p.split_tokens;
  const int end = min(seq_len, start + p.split_tokens);
  const int head0 = kv_head * p.group + hg * 16;
  const int rows = min(16, p.group - hg * 16);

  // Splits past the context do nothing; the others are counted by the merge.
  const int active = seq_len > 0 ? (seq_len + p.split_tokens - 1) / p.split_tokens : 0;
  if (split >= active) {
    if (split == 0) {  // no context at all: a zero output
      T* out = static_cast<T*>(p.out) + seq * p.out_stride + static_cast<int64_t>(head0) * kHeadDim;
      for (int i = tid; i < rows * kHeadDim; i += kDecodeThreads) out[i] = from_float<T>(0.0f);
    }
    return;
  }

  // ---- loads ----
  {
    const T* q = static_cast<const T*>(p.q) + seq * p.q_stride + static_cast<int64_t>(head0) * kHeadDim;
    for (int i = tid; i < 16 * kChunks; i += kDecodeThreads) {
      const int r = i / kChunks, c = i % kChunks;
      const bool valid = r < rows;
      cp_async_16(smem_addr(sQ) + swizzled_offset<kChunks>(r, c), valid ? q + r * kHeadDim + c * 8 : q, valid);
    }
    cp_async_commit();
  }
  // Byte views of the cache rows of this kv head (T elements, or e4m3 codes).
  const uint8_t* k_cache = static_cast<const uint8_t*>(p.k_cache) + static_cast<int64_t>(kv_head) * kHeadDim * Tr::kCacheBytes;
  const uint8_t* v_cache = static_cast<const uint8_t*>(p.v_cache) + static_cast<int64_t>(kv_head) * kHeadDim * Tr::kCacheBytes;
  const int64_t slot_bytes = p.num_kv_heads * kHeadDim * Tr::kCacheBytes;
  const int32_t* table = p.block_tables + seq * p.max_blocks_per_seq;
  const int block_mask = (1 << p.log2_block_size) - 1;
  auto slot_of = [&](int tok) {
    return (static_cast<int64_t>(table[tok >> p.log2_block_size]) << p.log2_block_size) + (tok & block_mask);
  };
  auto load_stage = [&](int stage, int buf) {
    const int tok0 = start + stage * kDecodeStageTokens;
    const uint32_t k_dst = smem_addr(sK + buf * Tr::kStageBytes);
    const uint32_t v_dst = smem_addr(sV + buf * Tr::kStageBytes);
#pragma unroll
    for (int it = 0; it < kDecodeStageTokens * kCacheChunks / kDecodeThreads; ++it) {
      const int i = tid + it * kDecodeThreads;
      const int t = i / kCacheChunks, c = i % kCacheChunks;
      const int tok = tok0 + t;
      const bool valid = tok < end;
      const int64_t offset = valid ? slot_of(tok) * slot_bytes + c * 16 : 0;
      // 16-bit rows go swizzled for ldmatrix; FP8 rows plainly (the widening reads them by rows).
      const uint32_t o = kFp8 ? static_cast<uint32_t>(t * kHeadDim + c * 16) : swizzled_offset<kChunks>(t, c);
      cp_async_16(k_dst + o, k_cache + offset, valid);
      cp_async_16(v_dst + o, v_cache + offset, valid);
    }
    if constexpr (kFp8) {
      // Thread t < 64 fetches token t's K scale, thread 64 + t its V scale (0 past the end).
      const int t = tid % kDecodeStageTokens;
      const bool is_v = tid >= kDecodeStageTokens;
      const int tok = tok0 + t;
      const bool valid = tok < end;
      const float* scales = is_v ? p.v_scales : p.k_scales;
      const float* src = valid ? scales + slot_of(tok) * p.num_kv_heads + kv_head : scales;
      cp_async_4(smem_addr((is_v ? sVScale : sKScale) + buf * kDecodeStageTokens + t), src, valid);
    }
  };

  const int num_stages = (end - start + kDecodeStageTokens - 1) / kDecodeStageTokens;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_stages) load_stage(s, s);
    cp_async_commit();  // NOTE: empty groups keep the wait counts uniform
  }

  // Q arrives first (the oldest group); its fragments stay in registers.
  cp_async_wait<kStages - 1>();
  __syncthreads();
  uint32_t qf[kKSteps][4];
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk)
    ldmatrix_x4(qf[kk], smem_addr(sQ) + swizzled_offset<kChunks>(lane & 15, kk * 2 + (lane >> 4)));
  float acc[kDTiles][4];
#pragma unroll
  for (int n = 0; n < kDTiles; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int it = 0; it < num_stages; ++it) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (it + kStages - 1 < num_stages) load_stage(it + kStages - 1, (it + kStages - 1) % kStages);
    cp_async_commit();
    const int buf = it % kStages;
    uint32_t k_base = smem_addr(sK + buf * Tr::kStageBytes);
    uint32_t v_base = smem_addr(sV + buf * Tr::kStageBytes);
    int warp_row0 = warp * 16;  // this warp's first token row in the K / V tiles
    if constexpr (kFp8) {
      // Widen this warp's 16 tokens (its own buffer: only the warp syncs).
      uint8_t* wide_k = sWide + warp * 2 * 16 * kHeadDim * 2;
      uint8_t* wide_v = wide_k + 16 * kHeadDim * 2;
      __syncwarp();  // the previous stage's ldmatrix reads of these buffers are done
      widen_e4m3_rows<T, kHeadDim>(wide_k, sK + buf * Tr::kStageBytes + warp * 16 * kHeadDim, 16, lane, 32);
      widen_e4m3_rows<T, kHeadDim>(wide_v, sV + buf * Tr::kStageBytes + warp * 16 * kHeadDim, 16, lane, 32);
      __syncwarp();
      k_base = smem_addr(wide_k);
      v_base = smem_addr(wide_v);
      warp_row0 = 0;
    }

    // S = Q K^T over this warp's 16 tokens: two n8 tiles.
    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    const int k_row = warp_row0 + (lane & 7) + ((lane >> 4) << 3);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t b[4];
      ldmatrix_x4(b, k_base + swizzled_offset<kChunks>(k_row, kk * 2 + ((lane >> 3) & 1)));
      mma_16816<T>(s[0], qf[kk], b[0], b[1]);
      mma_16816<T>(s[1], qf[kk], b[2], b[3]);
    }

    // Online softmax (log2 domain); tokens past the split's end are masked. Score (j, e) is of
    // token j * 8 + 2 * (lane & 3) + (e & 1) of the warp's 16.
    const int tok_base = start + it * kDecodeStageTokens + warp * 16 + 2 * (lane & 3);
    const float* k_scale = sKScale + buf * kDecodeStageTokens + warp * 16 + 2 * (lane & 3);
    const float* v_scale = sVScale + buf * kDecodeStageTokens + warp * 16 + 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float x = kFp8 ? s[j][e] * k_scale[j * 8 + (e & 1)] : s[j][e];
        s[j][e] = (tok_base + j * 8 + (e & 1) < end) ? x * p.scale_log2 : -INFINITY;
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = fmaxf(fmaxf(s[0][2 * r], s[0][2 * r + 1]), fmaxf(s[1][2 * r], s[1][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float corr = fast_exp2(m[r] - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        s[j][2 * r] = fast_exp2(s[j][2 * r] - m_use);
        s[j][2 * r + 1] = fast_exp2(s[j][2 * r + 1] - m_use);
        sum += s[j][2 * r] + s[j][2 * r + 1];
      }
      l[r] = l[r] * corr + sum;
      m[r] = m_new;
#pragma unroll
      for (int n = 0; n < kDTiles; ++n) {
        acc[n][2 * r] *= corr;
        acc[n][2 * r + 1] *= corr;
      }
    }

    // O += P V: P (16 x 16 tokens) from the score registers (FP8: times each token's V scale),
    // V via transposed ldmatrix.
    if constexpr (kFp8) {
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] *= v_scale[j * 8 + (e & 1)];
    }
    uint32_t pa[4];
    pa[0] = pack2<T>(s[0][0], s[0][1]);
    pa[1] = pack2<T>(s[0][2], s[0][3]);
    pa[2] = pack2<T>(s[1][0], s[1][1]);
    pa[3] = pack2<T>(s[1][2], s[1][3]);
    const int v_row = warp_row0 + (lane & 15);
#pragma unroll
    for (int dp = 0; dp < kHeadDim / 16; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, v_base + swizzled_offset<kChunks>(v_row, dp * 2 + (lane >> 4)));
      mma_16816<T>(acc[2 * dp], pa, b[0], b[1]);
      mma_16816<T>(acc[2 * dp + 1], pa, b[2], b[3]);
    }
  }

  // ---- merge the warps' states ----
  cp_async_wait<0>();
  __syncthreads();
  float* s_acc = reinterpret_cast<float*>(kFp8 ? sWide : sK);  // [warps][16][head_dim]
  float* s_ml = reinterpret_cast<float*>(sV);                  // [warps][16][2]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int row = (lane >> 2) + 8 * r;
    if ((lane & 3) == 0) {
      s_ml[(warp * 16 + row) * 2] = m[r];
      s_ml[(warp * 16 + row) * 2 + 1] = l[r];
    }
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) {
      const int col = n * 8 + 2 * (lane & 3);
      *reinterpret_cast<float2*>(&s_acc[(warp * 16 + row) * kHeadDim + col]) = make_float2(acc[n][2 * r], acc[n][2 * r + 1]);
    }
  }
  __syncthreads();
  const int64_t split_stride = p.num_seqs * p.num_q_heads;  // between splits' partial rows
  const int64_t row_base = seq * p.num_q_heads + head0;
  const int64_t partial_base = split * split_stride + row_base;
  T* out = static_cast<T*>(p.out) + seq * p.out_stride + static_cast<int64_t>(head0) * kHeadDim;
  for (int i = tid; i < rows * kHeadDim; i += kDecodeThreads) {
    const int r = i / kHeadDim, d = i % kHeadDim;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < Tr::kWarps; ++w) mx = fmaxf(mx, s_ml[(w * 16 + r) * 2]);
    float total = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < Tr::kWarps; ++w) {
      const float mw = s_ml[(w * 16 + r) * 2];
      const float wt = mw == -INFINITY ? 0.0f : fast_exp2(mw - mx);
      total += wt * s_ml[(w * 16 + r) * 2 + 1];
      o += wt * s_acc[(w * 16 + r) * kHeadDim + d];
    }
    const float value = total > 0.0f ? o / total : 0.0f;
    if (active == 1) {
      out[i] = from_float<T>(value);
    } else {
      p.partial_out[partial_base * kHeadDim + i] = value;
      if (d == 0) p.partial_lse[partial_base + r] = total > 0.0f ? mx + __log2f(total) : -INFINITY;
    }
  }
  if (active == 1) return;

  // ---- merge the splits: the last block of this (sequence, kv head, head group) to finish ----
  // combines the active splits' partial rows, weighted by 2^(lse - max lse).
  __shared__ uint32_t s_last;
  if (!arrive_last(&p.split_counters[seq * gridDim.y + blockIdx.y], static_cast<uint32_t>(active), &s_last)) return;
  float* s_weight = s_acc;                        // [16][kDecodeMaxSplits]
  float* s_total = s_acc + 16 * kDecodeMaxSplits;  // [16]
  for (int r = warp; r < rows; r += Tr::kWarps) {
    float mx = -INFINITY;
    for (int sp = lane; sp < active; sp += 32) mx = fmaxf(mx, __ldcg(&p.partial_lse[sp * split_stride + row_base + r]));
    mx = warp_max(mx);
    float total = 0.0f;
    for (int sp = lane; sp < active; sp += 32) {
      const float lse = __ldcg(&p.partial_lse[sp * split_stride + row_base + r]);
      const float wt = lse == -INFINITY ? 0.0f : fast_exp2(lse - mx);
      s_weight[r * kDecodeMaxSplits + sp] = wt;
      total += wt;
    }
    total = warp_sum(total);
    if (lane == 0) s_total[r] = total;
  }
  __syncthreads();
  for (int i = tid; i < rows * kHeadDim; i += kDecodeThreads) {
    const int r = i / kHeadDim;
    const float* src = p.partial_out + row_base * kHeadDim + i;
    float o = 0.0f;
#pragma unroll 4
    for (int sp = 0; sp < active; ++sp) o += s_weight[r * kDecodeMaxSplits + sp] * __ldcg(src + sp * split_stride * kHeadDim);
    out[i] = from_float<T>(s_total[r] > 0.0f ? o / s_total[r] : 0.0f);
  }
}

template <typename T, int kHeadDim, bool kFp8>
int decode_blocks_per_sm() {
  static const int blocks = [] {
    int n = 0;
    const int smem = DecodeTraits<kHeadDim, kFp8>::kSmemBytes;
    const auto kernel = decode_split_kernel<T, kHeadDim, kFp8>;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kDecodeThreads, smem) != cudaSuccess) {
      cudaGetLastError();
      n = 1;
    }
    return n > 0 ? n : 1;
  }();
  return blocks;
}

template <typename T, int kHeadDim, bool kFp8>
int run_attention_decode(const DecodeParams& p, cudaStream_t stream) {
  constexpr int smem = DecodeTraits<kHeadDim, kFp8>::kSmemBytes;
  const auto kernel = decode_split_kernel<T, kHeadDim, kFp8>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess) {
    cudaGetLastError();
    return cuda_fail(KILN_CUDA_ERR_UNSUPPORTED, "kiln_cuda_attention_decode: the head_dim %d kernel needs %d bytes of"
                     " shared memory per block, more than this device allows", kHeadDim, smem);
  }
  const dim3 grid(p.num_splits, static_cast<unsigned>(p.num_kv_heads * p.head_groups), static_cast<unsigned>(p.num_seqs));
  launch_pdl(p.num_seqs, kernel, grid, dim3(kDecodeThreads), smem, stream, p);
  KILN_CHECK_LAUNCH("kiln_cuda_attention_decode (split kernel)");
  return KILN_CUDA_OK;
}

}  // namespace kiln
