// Prefill attention device code, portable path (mma.sync m16n8k16, sm_80 and later), in the
// manner of FlashAttention-2: one block per (q head, kBlockM query rows, sequence); K/V tiles of
// kBlockN tokens are gathered from the paged cache with cp.async (a tile's rows may sit in
// different cache blocks), S = Q K^T and O += P V run on the tensor cores, the softmax is online
// in fp32 registers and no score matrix reaches memory. Loads of the next K (V) tile overlap the
// P V (Q K^T) product of the current one.
//
// Over an FP8 cache a tile arrives as e4m3 codes (and its rows' scales) in a buffer of its own and
// the block widens it to T (exact) before the products; a key's K scale multiplies its scores and
// its V scale its probabilities, so the softmax sums stay the unscaled ones.
#pragma once

#include "attention_prefill.h"
#include "common.cuh"
#include "e4m3.cuh"

namespace kiln {

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kMinBlocks_>
struct PrefillMmaTraits {
  static constexpr int kHeadDim = kHeadDim_, kBlockM = kBlockM_, kBlockN = kBlockN_, kWarps = kWarps_;
  static constexpr int kMinBlocks = kMinBlocks_;  // blocks per SM the register budget must allow
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kChunks = kHeadDim / 8;
  static constexpr int kMTiles = kBlockM / (16 * kWarps);  // m16 tiles per warp
  static constexpr int kSmemBytes = (kBlockM + 2 * kBlockN) * kHeadDim * 2;
  static_assert(kHeadDim % 64 == 0, "head_dim must be a multiple of 64 (rows of >= 8 swizzled chunks)");
  static_assert(kBlockM % (16 * kWarps) == 0, "kBlockM must give every warp whole m16 tiles");
  static_assert(kBlockN % 16 == 0, "kBlockN must be a multiple of 16 (the k of the P V product)");
  static_assert((kBlockM * kChunks) % kThreads == 0 && (kBlockN * kChunks) % kThreads == 0,
                "tile loads must split evenly over the threads");
};

// The tile shape per head size.
template <int kHeadDim>
struct PrefillMmaConfig;
template <>
struct PrefillMmaConfig<64> : PrefillMmaTraits<64, 128, 64, 8, 2> {};
template <>
struct PrefillMmaConfig<128> : PrefillMmaTraits<128, 128, 64, 8, 1> {};
template <>
struct PrefillMmaConfig<256> : PrefillMmaTraits<256, 64, 64, 4, 1> {};

// Loads kRows rows from the paged cache (rows = consecutive tokens from tok0; a row past kv_end
// is zero-filled, so NaN in unused slots never reaches a product): rows of T as kChunks swizzled
// 16-byte chunks, or (kFp8) rows of head_dim codes as they are, with each row's scale into
// dst_scales.
template <typename Tr, int kRows, bool kFp8>
__device__ __forceinline__ void load_kv_tile(uint32_t dst, const uint8_t* cache, uint32_t dst_scales,
                                             const float* scales, int64_t scale_stride, const int32_t* table,
                                             int tok0, int kv_end, int log2_block_size, int64_t slot_bytes) {
  constexpr int kChunks = Tr::kChunks;
  constexpr int kCacheChunks = kFp8 ? Tr::kHeadDim / 16 : kChunks;  // 16-byte chunks per cached row
  const int block_mask = (1 << log2_block_size) - 1;
  auto slot_of = [&](int tok) {
    return (static_cast<int64_t>(table[tok >> log2_block_size]) << log2_block_size) + (tok & block_mask);
  };
#pragma unroll
  for (int it = 0; it < kRows * kCacheChunks / Tr::kThreads; ++it) {
    const int i = threadIdx.x + it * Tr::kThreads;
    const int t = i / kCacheChunks, c = i % kCacheChunks;
    const int tok = tok0 + t;
    const bool valid = tok < kv_end;
    const int64_t offset = valid ? slot_of(tok) * slot_bytes + c * 16 : 0;
    const uint32_t o = kFp8 ? static_cast<uint32_t>(t * Tr::kHeadDim + c * 16) : swizzled_offset<kChunks>(t, c);
    cp_async_16(dst + o, cache + offset, valid);
  }
  if constexpr (kFp8) {
    static_assert(kRows <= Tr::kThreads, "a thread fetches each row's scale");
    const int t = threadIdx.x;
    const bool valid = t < kRows && tok0 + t < kv_end;
    if (t < kRows) cp_async_4(dst_scales + t * 4, valid ? scales + slot_of(tok0 + t) * scale_stride : scales, valid);
  }
}

template <typename T, typename Tr, bool kFp8>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks) prefill_mma_kernel(const PrefillParams p) {
  constexpr int kHeadDim = Tr::kHeadDim, kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN;
  constexpr int kChunks = Tr::kChunks, kMTiles = Tr::kMTiles;
  constexpr int kNTiles = kBlockN / 8, kDTiles = kHeadDim / 8;
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t sQ = smem_addr(smem);              // [kBlockM][head_dim] of T, swizzled
  const uint32_t sK = sQ + kBlockM * kHeadDim * 2;  // [kBlockN][head_dim] of T, swizzled
  const uint32_t sV = sK + kBlockN * kHeadDim * 2;  // [kBlockN][head_dim] of T, swizzled
  // FP8: the tiles as they arrive, [kBlockN][head_dim] codes each, and their rows' scales.
  uint8_t* sKCodes = smem + (kBlockM + 2 * kBlockN) * kHeadDim * 2;
  uint8_t* sVCodes = sKCodes + kBlockN * kHeadDim;
  float* sKScale = reinterpret_cast<float*>(sVCodes + kBlockN * kHeadDim);  // [kBlockN]
  float* sVScale = sKScale + kBlockN;                                          // [kBlockN]
  uint8_t* sKWide = smem + (kBlockM * kHeadDim * 2);
  uint8_t* sVWide = sKWide + kBlockN * kHeadDim * 2;
  // Where a tile's loads land: the widened tiles themselves for T, the code buffers for FP8.
  const uint32_t k_dst = kFp8 ? smem_addr(sKCodes) : sK;
  const uint32_t v_dst = kFp8 ? smem_addr(sVCodes) : sV;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
  const int ctx = seq_len - query_len;  // position of query row 0
  const int pos_first = ctx + row0;
  const int kv_end = min(seq_len, pos_first + rows_here);  // keys this tile can see
  const int n_blocks = kv_end > 0 ? (kv_end + kBlockN - 1) / kBlockN : 0;
  const int kv_head = head / p.group;

  const T* q = static_cast<const T*>(p.q) + static_cast<int64_t>(q0 + row0) * p.q_stride +
               static_cast<int64_t>(head) * kHeadDim;
  constexpr int kCacheBytes = kFp8 ? 1 : 2;
  const uint8_t* k_cache = static_cast<const uint8_t*>(p.k_cache) + static_cast<int64_t>(kv_head) * kHeadDim * kCacheBytes;
  const uint8_t* v_cache = static_cast<const uint8_t*>(p.v_cache) + static_cast<int64_t>(kv_head) * kHeadDim * kCacheBytes;
  const int64_t slot_bytes = p.num_kv_heads * kHeadDim * kCacheBytes;
  const float* k_scales = kFp8 ? p.k_scales + kv_head : nullptr;
  const float* v_scales = kFp8 ? p.v_scales + kv_head : nullptr;
  const int32_t* table = p.block_tables + seq * p.max_blocks_per_seq;
  auto load_k = [&](int nb) {
    load_kv_tile<Tr, kBlockN, kFp8>(k_dst, k_cache, smem_addr(sKScale), k_scales, p.num_kv_heads, table,
                                    nb * kBlockN, kv_end, p.log2_block_size, slot_bytes);
  };
  auto load_v = [&](int nb) {
    load_kv_tile<Tr, kBlockN, kFp8>(v_dst, v_cache, smem_addr(sVScale), v_scales, p.num_kv_heads, table,
                                    nb * kBlockN, kv_end, p.log2_block_size, slot_bytes);
  };

#pragma unroll
  for (int it = 0; it < kBlockM * kChunks / Tr::kThreads; ++it) {
    const int i = tid + it * Tr::kThreads;
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = r < rows_here;
    cp_async_16(sQ + swizzled_offset<kChunks>(r, c), valid ? q + static_cast<int64_t>(r) * p.q_stride + c * 8 : q,
                valid);
  }
  if (n_blocks > 0) load_k(n_blocks - 1);
  cp_async_commit();

  float acc[kMTiles][kDTiles][4];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
  float m[kMTiles][2], l[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;

  const int warp_row0 = warp * kMTiles * 16;
  for (int nb = n_blocks - 1; nb >= 0; --nb) {
    cp_async_wait<0>();
    __syncthreads();  // K[nb] (and Q) landed; every warp is done with V[nb + 1]
    if constexpr (kFp8) {
      widen_e4m3_rows<T, kHeadDim>(sKWide, sKCodes, kBlockN, tid, Tr::kThreads);
      __syncthreads();  // K[nb] widened
    }
    load_v(nb);
    cp_async_commit();

    float s[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int j = 0; j < kNTiles; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; ++kk) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
        ldmatrix_x4(a[mt], sQ + swizzled_offset<kChunks>(warp_row0 + mt * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
      for (int np = 0; np < kBlockN / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, sK + swizzled_offset<kChunks>(np * 16 + (lane & 7) + ((lane >> 4) << 3),
                                                     kk * 2 + ((lane >> 3) & 1)));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<T>(s[mt][2 * np], a[mt], b[0], b[1]);
          mma_16816<T>(s[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }

    // Causal / length mask only where the tile reaches past the first row's position.
    const int key0 = nb * kBlockN;
    const bool need_mask = key0 + kBlockN - 1 > pos_first || key0 + kBlockN > seq_len;
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int pos = pos_first + warp_row0 + mt * 16 + (lane >> 2) + 8 * r;
        const int limit = min(pos + 1, seq_len);  // keys [0, limit) are visible
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < kNTiles; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = key0 + j * 8 + 2 * (lane & 3) + e;
            const float raw = kFp8 ? s[mt][j][2 * r + e] * sKScale[j * 8 + 2 * (lane & 3) + e] : s[mt][j][2 * r + e];
            float x = raw * p.scale_log2;
            if (need_mask && key >= limit) x = -INFINITY;
            s[mt][j][2 * r + e] = x;
            mx = fmaxf(mx, x);
          }
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[mt][r], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = fast_exp2(m[mt][r] - m_use);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < kNTiles; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float pe = fast_exp2(s[mt][j][2 * r + e] - m_use);
            s[mt][j][2 * r + e] = pe;
            sum += pe;
          }
        }
        l[mt][r] = l[mt][r] * corr + sum;
        m[mt][r] = m_new;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n) {
          acc[mt][n][2 * r] *= corr;
          acc[mt][n][2 * r + 1] *= corr;
        }
      }
    }

    cp_async_wait<0>();
    __syncthreads();  // V[nb] landed; every warp is done with K[nb]
    if constexpr (kFp8) {
      widen_e4m3_rows<T, kHeadDim>(sVWide, sVCodes, kBlockN, tid, Tr::kThreads);
      // P times each key's V scale (the row sums l above are taken).
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int j = 0; j < kNTiles; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][j][e] *= sVScale[j * 8 + 2 * (lane & 3) + (e & 1)];
      __syncthreads();  // V[nb] widened; every thread is done with the K and V scales
    }
    if (nb > 0) load_k(nb - 1);
    cp_async_commit();

#pragma unroll
    for (int kt = 0; kt < kBlockN / 16; ++kt) {
      uint32_t pa[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        pa[mt][0] = pack2<T>(s[mt][2 * kt][0], s[mt][2 * kt][1]);
        pa[mt][1] = pack2<T>(s[mt][2 * kt][2], s[mt][2 * kt][3]);
        pa[mt][2] = pack2<T>(s[mt][2 * kt + 1][0], s[mt][2 * kt + 1][1]);
        pa[mt][3] = pack2<T>(s[mt][2 * kt + 1][2], s[mt][2 * kt + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kHeadDim / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, sV + swizzled_offset<kChunks>(kt * 16 + (lane & 15), dp * 2 + (lane >> 4)));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<T>(acc[mt][2 * dp], pa[mt], b[0], b[1]);
          mma_16816<T>(acc[mt][2 * dp + 1], pa[mt], b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

  // Normalise and store the rows of this tile that are real query rows.
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(q0 + row0) * p.out_stride + static_cast<int64_t>(head) * kHeadDim;
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = l[mt][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      const int row = warp_row0 + mt * 16 + (lane >> 2) + 8 * r;
      if (row < rows_here) {
        T* dst = out + static_cast<int64_t>(row) * p.out_stride + 2 * (lane & 3);
#pragma unroll
        for (int n = 0; n < kDTiles; ++n)
          *reinterpret_cast<uint32_t*>(dst + n * 8) = pack2<T>(acc[mt][n][2 * r] * inv, acc[mt][n][2 * r + 1] * inv);
      }
    }
  }
}

template <typename T, int kHeadDim, bool kFp8>
int run_attention_prefill_mma(PrefillParams p, int64_t max_query_len, cudaStream_t stream) {
  using Tr = PrefillMmaConfig<kHeadDim>;
  p.num_m_blocks = static_cast<int>((max_query_len + Tr::kBlockM - 1) / Tr::kBlockM);
  KILN_REQUIRE(p.num_m_blocks <= 65535, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "kiln_cuda_attention_prefill: max_query_len %lld is too long", (long long)max_query_len);
  // FP8: the code buffers and the scales after the tiles of T.
  constexpr int smem = Tr::kSmemBytes + (kFp8 ? 2 * Tr::kBlockN * (kHeadDim + 4) : 0);
  const auto kernel = prefill_mma_kernel<T, Tr, kFp8>;
  if (smem > 48 * 1024) cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  const dim3 grid(static_cast<unsigned>(p.num_q_heads), static_cast<unsigned>(p.num_m_blocks),
                  static_cast<unsigned>(p.num_seqs));
  kernel<<<grid, Tr::kThreads, smem, stream>>>(p);
  KILN_CHECK_LAUNCH("kiln_cuda_attention_prefill (mma)");
  return KILN_CUDA_OK;
}

}  // namespace kiln
