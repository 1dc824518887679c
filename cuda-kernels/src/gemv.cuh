// Skinny matrix products for decode: out[m, c] = x[m, :] . w[c, :] for a handful of rows m. At
// these sizes the product is a stream over the weights, so the kernel is shaped for bandwidth:
// one warp per output column, each lane streaming 16-byte vectors of the weight row with two
// rounds of loads in flight (they bypass L1, being read once), while x (small, read by every
// warp) comes from L1/L2. Partial sums stay in fp32 registers and are reduced across the warp.
//
// The gated form computes an MLP's gate and up projections and their SiLU product at once: the
// warp of column c streams weight rows c (gate) and n + c (up), so gate_up never reaches memory.
#pragma once

#include "common.cuh"

namespace kiln {

constexpr int kGemvThreads = 128;  // 4 warps, 4 output columns per block
constexpr int kGemvLoadsPerRound = 8;  // 16-byte weight loads per lane and round (two rounds in flight)
constexpr int kGemvMaxRows = 4;    // KILN_CUDA_GEMV_MAX_ROWS

struct GemvParams {
  void* out;          // [m, n] of the output type, row stride out_stride
  const void* x;      // [m, k], row stride x_stride
  const void* w;      // [n, k] ([2n, k] gated: the gate rows, then the up rows), rows contiguous
  const void* bias;   // [n] or nullptr (never with the gated form)
  int64_t out_stride, x_stride;
  int64_t n, k;
};

// acc[r][m] += w_r[v-th vector] . x[m][v-th vector], for the kRows weight rows of this warp.
template <typename T, int M, int kRows>
__device__ __forceinline__ void gemv_accumulate(const GemvParams& p, const uint4 (&wv)[kRows], int64_t v,
                                                float (&acc)[kRows][M]) {
  float w[kRows][8];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    Vec8<T> w8;
    w8.raw = wv[r];
    w8.to_float(w[r]);
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    Vec8<T> x8;
    x8.raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(p.x) + m * p.x_stride) + v);
    float x[8];
    x8.to_float(x);
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[r][m] = fmaf(w[r][i], x[i], acc[r][m]);
  }
}

template <int kUnroll, int kRows>
__device__ __forceinline__ void gemv_load_round(const uint4* const (&w)[kRows], int64_t v,
                                                uint4 (&round)[kUnroll][kRows]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u)
#pragma unroll
    for (int r = 0; r < kRows; ++r) round[u][r] = load_streaming(w[r] + v + 32 * u);
}

template <typename T, int M, int kRows, int kUnroll>
__device__ __forceinline__ void gemv_accumulate_round(const GemvParams& p, const uint4 (&round)[kUnroll][kRows],
                                                      int64_t v, float (&acc)[kRows][M]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) gemv_accumulate<T, M, kRows>(p, round[u], v + 32 * u, acc);
}

// Grid: ceil(n / 4) blocks of kGemvThreads; k % 8 == 0, x / w 16-byte aligned, x_stride % 8 == 0.
template <typename T, typename TOut, int M, bool kGated>
__global__ void __launch_bounds__(kGemvThreads) gemv_kernel(const GemvParams p) {
  constexpr int kRows = kGated ? 2 : 1;
  constexpr int kUnroll = kGemvLoadsPerRound / kRows;
  const int lane = threadIdx.x & 31;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * (kGemvThreads / 32) + (threadIdx.x >> 5);
  if (col >= p.n) return;
  const uint4* w[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
    w[r] = reinterpret_cast<const uint4*>(static_cast<const T*>(p.w) + (col + r * p.n) * p.k);
  const int64_t nvec = p.k / 8;
  float acc[kRows][M];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.0f;

  // Full rounds of kUnroll vectors per weight row, two rounds in flight: the next round's loads
  // are issued before this one's arithmetic. The weights are no earlier kernel's output, so the
  // first round is on its way before the wait for x.
  int64_t v = lane;
  uint4 a[kUnroll][kRows], b[kUnroll][kRows];
  bool have_a = v + 32 * (kUnroll - 1) < nvec;
  if (have_a) gemv_load_round<kUnroll, kRows>(w, v, a);
  pdl_wait();
  pdl_launch_dependents();
  while (have_a) {
    const bool have_b = v + 32 * (2 * kUnroll - 1) < nvec;
    if (have_b) gemv_load_round<kUnroll, kRows>(w, v + 32 * kUnroll, b);
    gemv_accumulate_round<T, M, kRows, kUnroll>(p, a, v, acc);
    v += 32 * kUnroll;
    if (!have_b) break;
    have_a = v + 32 * (2 * kUnroll - 1) < nvec;
    if (have_a) gemv_load_round<kUnroll, kRows>(w, v + 32 * kUnroll, a);
    gemv_accumulate_round<T, M, kRows, kUnroll>(p, b, v, acc);
    v += 32 * kUnroll;
  }
  // The rest of the row, one vector a lane at a time.
  for (; v < nvec; v += 32) {
    uint4 wv[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) wv[r] = load_streaming(w[r] + v);
    gemv_accumulate<T, M, kRows>(p, wv, v, acc);
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = warp_sum(acc[r][m]);
  if (lane < M) {  // lane m writes row m
    float value = 0.0f;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      if (lane != m) continue;
      if constexpr (kGated) {
        // gate and up rounded as a separate gate_up product would store them, then SiLU-and-mul.
        const float gate = to_float(from_float<T>(acc[0][m]));
        const float up = to_float(from_float<T>(acc[1][m]));
        value = gate / (1.0f + __expf(-gate)) * up;
      } else {
        value = acc[0][m];
      }
    }
    if (p.bias != nullptr) value += to_float(static_cast<const T*>(p.bias)[col]);
    static_cast<TOut*>(p.out)[lane * p.out_stride + col] = from_float<TOut>(value);
  }
}

}  // namespace kiln
