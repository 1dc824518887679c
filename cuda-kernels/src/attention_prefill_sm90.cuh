// Prefill attention device code, Hopper path (wgmma, sm_90a). One block of two warpgroups per
// (q head, 128 query rows, sequence); each warpgroup owns 64 rows. K/V tiles of 128 tokens are
// gathered from the paged cache by cp.async into 128-byte-swizzled shared memory, two stages
// deep, so the next tile streams in while this one is computed. S = Q K^T runs as wgmma with
// both operands in shared memory; the online softmax works on the accumulator registers, which
// then feed O += P V directly as the register A operand, with V read MN-major (transposed) from
// the same swizzled layout. No score matrix leaves the registers. By default (version 3) the
// second warpgroup issues its products only after the first has issued its own, so that one
// warpgroup's softmax overlaps the other's products on the tensor cores.
//
// NOTE: the loads stay cp.async (not the bulk tensor copy engine) because a tile's rows come
// from arbitrary cache blocks; block sizes of 16 and 32 tokens would need 4-8 copies per tile.
#pragma once

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "attention_prefill.h"
#include "common.cuh"
#include "sm90.cuh"
#include "wgmma.cuh"

namespace kiln {

template <int kHeadDim_>
struct PrefillSm90Config {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = 128;  // two warpgroups x 64 rows
  static constexpr int kBlockN = 128;
  static constexpr int kThreads = 256;
  static constexpr int kStages = 2;
  static constexpr int kChunks = kHeadDim / 8;                // 16-byte chunks per row
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kTileBytes = kBlockN * kHeadDim * 2;   // one K or V tile
  static constexpr int kSmemBytes = kQBytes + 2 * kStages * kTileBytes + 1024;  // + alignment slack
  static_assert(kHeadDim == 64 || kHeadDim == 128, "the wgmma prefill kernel has head_dim 64 and 128");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory of one block is at most 227 KB");
};

template <typename T, int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t a, uint64_t b, int scale_d) {
  if constexpr (N == 128) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) wgmma_m64n128k16_ss_bf16(d, a, b, scale_d);
    else wgmma_m64n128k16_ss_f16(d, a, b, scale_d);
  } else {
    static_assert(N == 64, "wgmma_ss: N must be 64 or 128");
    if constexpr (std::is_same_v<T, __nv_bfloat16>) wgmma_m64n64k16_ss_bf16(d, a, b, scale_d);
    else wgmma_m64n64k16_ss_f16(d, a, b, scale_d);
  }
}

template <typename T, int N>
__device__ __forceinline__ void wgmma_rs_tn(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b, int scale_d) {
  if constexpr (N == 128) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) wgmma_m64n128k16_rs_tn_bf16(d, a, b, scale_d);
    else wgmma_m64n128k16_rs_tn_f16(d, a, b, scale_d);
  } else {
    static_assert(N == 64, "wgmma_rs_tn: N must be 64 or 128");
    if constexpr (std::is_same_v<T, __nv_bfloat16>) wgmma_m64n64k16_rs_tn_bf16(d, a, b, scale_d);
    else wgmma_m64n64k16_rs_tn_f16(d, a, b, scale_d);
  }
}

// Named barriers that order the two warpgroups' matrix ops (kPingpong): warpgroup 1 issues its
// products only after warpgroup 0 has issued its own, so each SM sub-partition's tensor core
// runs them in that order and the softmax of one warpgroup overlaps the products of the other.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// kPingpong: order the warpgroups' products (version 3). kLateLoads (version 4, with kPingpong):
// one barrier per tile, after which warpgroup 1 alone issues the next tile's loads while
// warpgroup 0 starts its products, taking the loads off warpgroup 0's path.
template <typename T, int kHeadDim, bool kPingpong, bool kLateLoads = false>
__global__ void __launch_bounds__(256, 1) prefill_sm90_kernel(const PrefillParams p) {
  static_assert(!kLateLoads || kPingpong, "late loads by warpgroup 1 go with the ordered products");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Cfg = PrefillSm90Config<kHeadDim>;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kChunks = Cfg::kChunks;
  constexpr int kThreads = Cfg::kThreads;
  extern __shared__ uint8_t smem_raw[];
  const uint32_t smem_base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sQ = smem_base;
  const uint32_t sK = sQ + Cfg::kQBytes;                      // [stage] tiles
  const uint32_t sV = sK + Cfg::kStages * Cfg::kTileBytes;    // [stage] tiles

  const int tid = threadIdx.x, lane = tid & 31;
  const int wg = tid >> 7;               // warpgroup: rows [64 * wg, 64 * wg + 64)
  const int wg_warp = (tid >> 5) & 3;    // warp within the warpgroup: 16 of its rows
  const int head = blockIdx.x;
  const int m_block = p.num_m_blocks - 1 - static_cast<int>(blockIdx.y);  // NOTE: longest rows first
  const int64_t seq = blockIdx.z;
  const int q0 = p.query_start[seq];
  const int query_len = p.query_start[seq + 1] - q0;
  const int row0 = m_block * kBlockM;
  if (row0 >= query_len) return;
  const int seq_len = static_cast<int>(
      min(static_cast<int64_t>(p.seq_lens[seq]), p.max_blocks_per_seq << p.log2_block_size));
  const int rows_here = min(kBlockM, query_len - row0);
  const int pos_first = seq_len - query_len + row0;
  const int kv_end = min(seq_len, pos_first + rows_here);
  const int n_blocks = kv_end > 0 ? (kv_end + kBlockN - 1) / kBlockN : 0;
  const int kv_head = head / p.group;

  const T* q = static_cast<const T*>(p.q) + static_cast<int64_t>(q0 + row0) * p.q_stride +
               static_cast<int64_t>(head) * kHeadDim;
  const T* k_cache = static_cast<const T*>(p.k_cache) + static_cast<int64_t>(kv_head) * kHeadDim;
  const T* v_cache = static_cast<const T*>(p.v_cache) + static_cast<int64_t>(kv_head) * kHeadDim;
  const int64_t slot_stride = p.num_kv_heads * kHeadDim;
  const int32_t* table = p.block_tables + seq * p.max_blocks_per_seq;
  const int block_mask = (1 << p.log2_block_size) - 1;

#pragma unroll
  for (int it = 0; it < kBlockM * kChunks / kThreads; ++it) {
    const int i = tid + it * kThreads;
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = r < rows_here;
    cp_async_16(sQ + sw128_offset<kBlockM>(r, c), valid ? q + static_cast<int64_t>(r) * p.q_stride + c * 8 : q, valid);
  }
  // K and V rows of one tile: a thread copies one chunk column of kBlockN * kChunks / threads
  // tokens; K and V share the slot lookup. `loaders` threads from `first` take part.
  auto load_tile = [&](int tile, int stage, auto loaders, int first) {
    constexpr int kLoaders = decltype(loaders)::value;
    const uint32_t k_dst = sK + stage * Cfg::kTileBytes, v_dst = sV + stage * Cfg::kTileBytes;
#pragma unroll
    for (int it = 0; it < kBlockN * kChunks / kLoaders; ++it) {
      const int i = tid - first + it * kLoaders;
      const int t = i / kChunks, c = i % kChunks;
      const int tok = tile * kBlockN + t;
      const bool valid = tok < kv_end;
      int64_t offset = 0;
      if (valid) {
        const int64_t slot = (static_cast<int64_t>(table[tok >> p.log2_block_size]) << p.log2_block_size) + (tok & block_mask);
        offset = slot * slot_stride + c * 8;
      }
      const uint32_t o = sw128_offset<kBlockN>(t, c);
      cp_async_16(k_dst + o, k_cache + offset, valid);
      cp_async_16(v_dst + o, v_cache + offset, valid);
    }
  };
  using AllThreads = std::integral_constant<int, kThreads>;
  using OneWarpgroup = std::integral_constant<int, 128>;
  if (n_blocks > 0) load_tile(0, 0, AllThreads{}, 0);
  cp_async_commit();
  if constexpr (!kLateLoads) {
    if (n_blocks > 1) load_tile(1, 1, AllThreads{}, 0);
    cp_async_commit();
  }

  float o[kHeadDim / 2];
#pragma unroll
  for (int i = 0; i < kHeadDim / 2; ++i) o[i] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int row_base = wg * 64 + wg_warp * 16 + (lane >> 2);  // this thread's rows: row_base, row_base + 8

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int stage = nb & 1;
    if constexpr (kLateLoads) {
      cp_async_wait<0>();
    } else {
      cp_async_wait<1>();
    }
    fence_proxy_async();
    __syncthreads();  // tile nb (and Q) visible to the tensor cores; tile nb-1 fully consumed
    if constexpr (kLateLoads) {
      if (wg == 1 && nb + 1 < n_blocks) load_tile(nb + 1, (nb + 1) & 1, OneWarpgroup{}, 128);
      cp_async_commit();
    }

    // S = Q K^T: 64 x 128 per warpgroup, K-major operands, k-steps of 16 along head_dim.
    float s[kBlockN / 2];
    fence_operands(s);
    if (kPingpong && wg == 1) named_barrier_sync(1, 256);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; ++kk) {
      const uint32_t col = (kk >> 2), sub = (kk & 3) * 32;
      const uint64_t da = sw128_desc(sQ + col * (kBlockM * 128) + wg * (64 * 128) + sub, 16, 1024);
      const uint64_t db = sw128_desc(sK + stage * Cfg::kTileBytes + col * (kBlockN * 128) + sub, 16, 1024);
      wgmma_ss<T, kBlockN>(s, da, db, kk > 0 ? 1 : 0);
    }
    wgmma_commit();
    if (kPingpong && wg == 0) named_barrier_arrive(1, 256);
    wgmma_wait<0>();
    fence_operands(s);

    // Online softmax in the log2 domain on the accumulator layout: s[4j + 2r + e] is row
    // row_base + 8r, key nb * kBlockN + 8j + 2 * (lane % 4) + e.
    const int key0 = nb * kBlockN;
    const bool need_mask = key0 + kBlockN - 1 > pos_first || key0 + kBlockN > seq_len;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int limit = min(pos_first + row_base + 8 * r + 1, seq_len);
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float x = s[4 * j + 2 * r + e] * p.scale_log2;
          if (need_mask && key0 + 8 * j + 2 * (lane & 3) + e >= limit) x = -INFINITY;
          s[4 * j + 2 * r + e] = x;
          mx = fmaxf(mx, x);
        }
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float corr = fast_exp2(m[r] - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pe = fast_exp2(s[4 * j + 2 * r + e] - m_use);
          s[4 * j + 2 * r + e] = pe;
          sum += pe;
        }
      }
      l[r] = l[r] * corr + sum;
      m[r] = m_new;
#pragma unroll
      for (int j = 0; j < kHeadDim / 8; ++j) {
        o[4 * j + 2 * r] *= corr;
        o[4 * j + 2 * r + 1] *= corr;
      }
    }

    // O += P V: P from the registers (k-steps of 16 keys), V MN-major from shared memory.
    uint32_t pf[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      pf[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
      pf[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
    }
    fence_operands(o);
    if (kPingpong && wg == 1) named_barrier_sync(2, 256);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint64_t db = sw128_desc(sV + stage * Cfg::kTileBytes + kk * (16 * 128), kBlockN * 128, 1024);
      wgmma_rs_tn<T, kHeadDim>(o, pf[kk], db, 1);
    }
    wgmma_commit();
    if (kPingpong && wg == 0) named_barrier_arrive(2, 256);
    wgmma_wait<0>();
    fence_operands(o);

    if constexpr (!kLateLoads) {
      fence_proxy_async();
      __syncthreads();  // both warpgroups are done with this stage
      if (nb + 2 < n_blocks) load_tile(nb + 2, stage, AllThreads{}, 0);
      cp_async_commit();
    }
  }
  cp_async_wait<0>();

  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(q0 + row0) * p.out_stride + static_cast<int64_t>(head) * kHeadDim;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int row = row_base + 8 * r;
    if (row < rows_here) {
      T* dst = out + static_cast<int64_t>(row) * p.out_stride + 2 * (lane & 3);
#pragma unroll
      for (int j = 0; j < kHeadDim / 8; ++j)
        *reinterpret_cast<uint32_t*>(dst + 8 * j) = pack2<T>(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
    }
  }
#else
  __trap();  // launched only on sm_90 devices, which run the sm_90a code
#endif
}

// KILN_CUDA_PREFILL=sm90v1|sm90v4 picks another version, for comparisons: 1 without the ordered
// products, 4 = 3 with late loads by warpgroup 1.
// NOTE: version 3 (1 with the warpgroups' products ordered) is the default: on the H100 it
// measured 341 TFLOP/s against 327 for version 1 and 319 for version 4 (causal, S=4096, D=128).
// Version 2, which overlapped consecutive tiles' products FlashAttention-3 style, measured 284
// and was dropped (docs/kernels-notes.md).
inline int prefill_sm90_version() {
  const char* force = std::getenv("KILN_CUDA_PREFILL");
  if (force != nullptr && std::strcmp(force, "sm90v1") == 0) return 1;
  if (force != nullptr && std::strcmp(force, "sm90v4") == 0) return 4;
  return 3;
}

template <typename T, int kHeadDim>
int run_attention_prefill_sm90(PrefillParams p, int64_t max_query_len, cudaStream_t stream) {
  if constexpr (kHeadDim != 64 && kHeadDim != 128) {
    return KILN_CUDA_ERR_UNSUPPORTED;  // the portable kernel takes it
  } else {
    using Cfg = PrefillSm90Config<kHeadDim>;
    p.num_m_blocks = static_cast<int>((max_query_len + Cfg::kBlockM - 1) / Cfg::kBlockM);
    KILN_REQUIRE(p.num_m_blocks <= 65535, KILN_CUDA_ERR_INVALID_ARGUMENT,
                 "kiln_cuda_attention_prefill: max_query_len %lld is too long", (long long)max_query_len);
    constexpr int smem = Cfg::kSmemBytes;
    const dim3 grid(static_cast<unsigned>(p.num_q_heads), static_cast<unsigned>(p.num_m_blocks),
                    static_cast<unsigned>(p.num_seqs));
    switch (prefill_sm90_version()) {
      case 1:
        cudaFuncSetAttribute(prefill_sm90_kernel<T, kHeadDim, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        prefill_sm90_kernel<T, kHeadDim, false><<<grid, Cfg::kThreads, smem, stream>>>(p);
        break;
      case 4:
        cudaFuncSetAttribute(prefill_sm90_kernel<T, kHeadDim, true, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        prefill_sm90_kernel<T, kHeadDim, true, true><<<grid, Cfg::kThreads, smem, stream>>>(p);
        break;
      default:
        cudaFuncSetAttribute(prefill_sm90_kernel<T, kHeadDim, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        prefill_sm90_kernel<T, kHeadDim, true><<<grid, Cfg::kThreads, smem, stream>>>(p);
        break;
    }
    KILN_CHECK_LAUNCH("kiln_cuda_attention_prefill (sm90)");
    return KILN_CUDA_OK;
  }
}

}  // namespace kiln
