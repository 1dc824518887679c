// The narrow FP8 product (Hopper, wgmma): decode steps of 17 to 128 tokens against e4m3 weights.
//
// At these row counts the product is bound by the weights' bytes, and cuBLASLt's FP8 GEMM streams
// them at a third of the bandwidth (its tiles are made for many rows). Here the operands are
// swapped: the weights are wgmma's M (64 rows a warpgroup, two warpgroups a block) and the tokens
// its N (32, 64 or 128), so one block reads a 128-row strip of the weights once and multiplies
// every token by it. Both operands are K-major, as e4m3 wgmma needs: the weights [n, k] and the
// quantised tokens [m, k] as stored. Stages of 128 bytes of K (one 128-byte swizzle row) stream
// into shared memory by cp.async, several stages ahead.
//
// Where the strips alone would leave multiprocessors idle (o and down of an 8B model: 32 strips),
// K is split over several blocks; each writes its fp32 partial sums in its accumulators' own
// layout, and the last block of a strip to finish adds them in split order (the same sum whichever
// block is last) and writes the output. Gated (gate/up then SiLU-and-mul), warpgroup 0 holds 64
// gate rows and warpgroup 1 the 64 matching up rows, paired through shared memory at the end.
#pragma once

#include "common.cuh"
#include "fp8.cuh"
#include "sm90.cuh"
#include "wgmma.cuh"

namespace kiln {

constexpr int kNarrowF8Threads = 256;    // two warpgroups
constexpr int kNarrowF8StripRows = 128;  // weight rows of a block (gated: 64 gate + 64 up)
constexpr int kNarrowF8KTile = 128;      // K bytes of a stage
constexpr int kNarrowF8MaxTokens = 128;
constexpr int kNarrowF8MaxSplits = 4;

template <int kTokens>
struct NarrowF8Config {
  static constexpr int kWeightBytes = kNarrowF8StripRows * kNarrowF8KTile;  // [128 rows][128 B]
  static constexpr int kTokenBytes = kTokens * kNarrowF8KTile;              // [kTokens][128 B]
  static constexpr int kStageBytes = kWeightBytes + kTokenBytes;
  // Two blocks a multiprocessor (96 KB each at most), two or three stages in flight per block.
  static constexpr int kStages = kTokens >= 128 ? 3 : 4;
  static constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + alignment slack
  static constexpr int kAcc = kTokens / 2;                         // accumulators a thread
  static_assert(kTokens == 32 || kTokens == 64 || kTokens == 128, "token tiles of 32, 64 or 128");
  static_assert(kStageBytes % 1024 == 0, "stages keep the 1024-byte alignment of the swizzle");
};

struct NarrowF8Params {
  void* out;              // [m, n] of the output type, row stride out_stride
  const uint8_t* xq;      // [m, k] e4m3, row stride k
  const float* x_scales;  // [m]
  const uint8_t* w;       // [n, k] e4m3 ([2n, k] gated: the gate rows, then the up rows)
  const float* w_scales;  // [n] ([2n] gated)
  const void* bias;       // [n] of the activation type, or nullptr
  float* partials;        // [strips, splits, 256 threads, kAcc] fp32, when splits > 1
  uint32_t* counters;     // [strips], zero between calls, when splits > 1
  int64_t out_stride, m, n, k;
  int splits, k_tiles_per_split;
};

template <int kTokens>
__device__ __forceinline__ void wgmma_e4m3(float (&d)[kTokens / 2], uint64_t a, uint64_t b, int scale_d) {
  if constexpr (kTokens == 128) wgmma_m64n128k32_ss_e4m3(d, a, b, scale_d);
  else if constexpr (kTokens == 64) wgmma_m64n64k32_ss_e4m3(d, a, b, scale_d);
  else wgmma_m64n32k32_ss_e4m3(d, a, b, scale_d);
}

// Grid: (strips, splits); block kNarrowF8Threads; k % 128 == 0; m <= kTokens; xq, w 16-byte
// aligned. Strip s covers weight rows [128 s, 128 s + 128) (gated: gate rows [64 s, 64 s + 64) and
// the same up rows); split z covers K tiles [z * k_tiles_per_split, ...).
template <typename TOut, typename TAct, bool kGated, int kTokens>
__global__ void __launch_bounds__(kNarrowF8Threads, 2) gemm_f8_narrow_kernel(const NarrowF8Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Cfg = NarrowF8Config<kTokens>;
  constexpr int kStages = Cfg::kStages;
  constexpr int kAcc = Cfg::kAcc;
  extern __shared__ uint8_t smem_raw[];
  __shared__ uint32_t s_last;
  const uint32_t smem_base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const int tid = threadIdx.x, wg = tid >> 7, wg_tid = tid & 127, warp_in_wg = wg_tid >> 5, lane = tid & 31;
  const int64_t strip = blockIdx.x;
  const int split = blockIdx.y;
  const int64_t k_tiles = p.k / kNarrowF8KTile;
  const int64_t tile_begin = static_cast<int64_t>(split) * p.k_tiles_per_split;
  const int64_t tile_end = min(tile_begin + static_cast<int64_t>(p.k_tiles_per_split), k_tiles);
  const int tiles = tile_end > tile_begin ? static_cast<int>(tile_end - tile_begin) : 0;

  // Weight row of strip row r (0-127): rows past the end read the last row and are not written.
  auto weight_row = [&](int r) -> int64_t {
    if constexpr (kGated) {
      const int64_t row = min(strip * 64 + (r & 63), p.n - 1);
      return r < 64 ? row : row + p.n;
    } else {
      return min(strip * kNarrowF8StripRows + r, p.n - 1);
    }
  };
  // Each thread copies 4 of a stage's 1024 weight chunks and kTokens / 32 of its token chunks.
  const uint8_t* w_src[4];
  uint32_t w_dst[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int chunk = tid + i * kNarrowF8Threads, r = chunk >> 3, c = chunk & 7;
    w_src[i] = p.w + weight_row(r) * p.k + c * 16;
    w_dst[i] = sw128_offset<kNarrowF8StripRows>(r, c);
  }
  constexpr int kTokenChunks = kTokens * 8 / kNarrowF8Threads;
  const uint8_t* x_src[kTokenChunks];
  uint32_t x_dst[kTokenChunks];
  bool x_valid[kTokenChunks];
#pragma unroll
  for (int i = 0; i < kTokenChunks; ++i) {
    const int chunk = tid + i * kNarrowF8Threads, r = chunk >> 3, c = chunk & 7;
    x_valid[i] = r < p.m;
    x_src[i] = p.xq + (x_valid[i] ? r : 0) * p.k + c * 16;
    x_dst[i] = Cfg::kWeightBytes + sw128_offset<kTokens>(r, c);
  }
  auto load_weights = [&](int t) {
    const uint32_t stage = smem_base + (t % kStages) * Cfg::kStageBytes;
    const int64_t at = (tile_begin + t) * kNarrowF8KTile;
#pragma unroll
    for (int i = 0; i < 4; ++i) cp_async_16(stage + w_dst[i], w_src[i] + at, true);
  };
  auto load_tokens = [&](int t) {
    const uint32_t stage = smem_base + (t % kStages) * Cfg::kStageBytes;
    const int64_t at = (tile_begin + t) * kNarrowF8KTile;
#pragma unroll
    for (int i = 0; i < kTokenChunks; ++i) cp_async_16(stage + x_dst[i], x_src[i] + (x_valid[i] ? at : 0), x_valid[i]);
  };

  // The weights are no earlier kernel's output: the first stages' weights are requested before
  // the wait for the quantised tokens. Commit group t then holds stage t's tokens (group 0 also
  // every prologue weight load), so waiting for group t covers stage t.
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t)
    if (t < tiles) load_weights(t);
  pdl_wait();
  pdl_launch_dependents();
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < tiles) load_tokens(t);
    cp_async_commit();
  }

  float acc[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) acc[i] = 0.0f;
  for (int t = 0; t < tiles; ++t) {
    cp_async_wait<kStages - 2>();
    fence_proxy_async();
    __syncthreads();  // stage t visible to the tensor cores; stage t - 1 fully consumed
    const int next = t + kStages - 1;
    if (next < tiles) {
      load_weights(next);
      load_tokens(next);
    }
    cp_async_commit();

    const uint32_t stage = smem_base + (t % kStages) * Cfg::kStageBytes;
    fence_operands(acc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kNarrowF8KTile / 32; ++kk) {
      const uint64_t da = sw128_desc(stage + wg * (64 * 128) + kk * 32, 16, 1024);
      const uint64_t db = sw128_desc(stage + Cfg::kWeightBytes + kk * 32, 16, 1024);
      wgmma_e4m3<kTokens>(acc, da, db, 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(acc);
  }
  cp_async_wait<0>();

  if (p.splits > 1) {
    // This block's partial sums in its accumulators' layout, then the last block of the strip
    // adds every split's in order.
    float* mine = p.partials + ((strip * p.splits + split) * kNarrowF8Threads + tid) * kAcc;
#pragma unroll
    for (int i = 0; i < kAcc; i += 4) *reinterpret_cast<float4*>(mine + i) = make_float4(acc[i], acc[i + 1], acc[i + 2], acc[i + 3]);
    if (!arrive_last(&p.counters[strip], static_cast<uint32_t>(p.splits), &s_last)) return;
    // Every split's partials from memory, this block's own too: the same additions in the same
    // order whichever block is last.
#pragma unroll
    for (int i = 0; i < kAcc; ++i) acc[i] = 0.0f;
    for (int z = 0; z < p.splits; ++z) {
      const float* theirs = p.partials + ((strip * p.splits + z) * kNarrowF8Threads + tid) * kAcc;
#pragma unroll
      for (int i = 0; i < kAcc; i += 4) {
        const float4 v = __ldcg(reinterpret_cast<const float4*>(theirs + i));
        acc[i] += v.x;
        acc[i + 1] += v.y;
        acc[i + 2] += v.z;
        acc[i + 3] += v.w;
      }
    }
  }

  // acc[4j + 2h + e] is strip row 64 wg + 16 warp + lane / 4 + 8 h and token 8j + 2 (lane % 4) + e.
  const int row_in_wg = warp_in_wg * 16 + (lane >> 2);
  if constexpr (kGated) {
    // The up rows' values, rounded as a separate gate_up product would store them, go through
    // shared memory (the stages are free now) to the gate thread of the same position.
    float* up_values = reinterpret_cast<float*>(smem_raw + (smem_base - smem_addr(smem_raw)));  // [128][kAcc]
    fence_proxy_async();  // the tensor cores' reads of the stages before these writes
    __syncthreads();
    if (wg == 1) {
#pragma unroll
      for (int i = 0; i < kAcc; ++i) {
        const int64_t row = strip * 64 + row_in_wg + 8 * ((i >> 1) & 1);
        const int token = 8 * (i >> 2) + 2 * (lane & 3) + (i & 1);
        float value = 0.0f;
        if (row < p.n && token < p.m)
          value = to_float(from_float<TAct>(acc[i] * (p.x_scales[token] * p.w_scales[row + p.n])));
        up_values[wg_tid * kAcc + i] = value;
      }
    }
    __syncthreads();
    if (wg == 0) {
#pragma unroll
      for (int i = 0; i < kAcc; ++i) {
        const int64_t row = strip * 64 + row_in_wg + 8 * ((i >> 1) & 1);
        const int token = 8 * (i >> 2) + 2 * (lane & 3) + (i & 1);
        if (row >= p.n || token >= p.m) continue;
        const float gate = to_float(from_float<TAct>(acc[i] * (p.x_scales[token] * p.w_scales[row])));
        const float value = gate / (1.0f + __expf(-gate)) * up_values[wg_tid * kAcc + i];
        static_cast<TOut*>(p.out)[token * p.out_stride + row] = from_float<TOut>(value);
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int64_t row = strip * kNarrowF8StripRows + wg * 64 + row_in_wg + 8 * ((i >> 1) & 1);
      const int token = 8 * (i >> 2) + 2 * (lane & 3) + (i & 1);
      if (row >= p.n || token >= p.m) continue;
      float value = acc[i] * (p.x_scales[token] * p.w_scales[row]);
      if (p.bias != nullptr) value += to_float(static_cast<const TAct*>(p.bias)[row]);
      static_cast<TOut*>(p.out)[token * p.out_stride + row] = from_float<TOut>(value);
    }
  }
#else
  __trap();  // the launcher runs it on Hopper only (the sm_90a build)
#endif
}

}  // namespace kiln
