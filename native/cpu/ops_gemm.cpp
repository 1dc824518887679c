// out = x @ w^T + bias on the CPU, fp32 accumulation, weights in fp32, fp16 or bf16.
//
// NOTE: weights are the large operand and are read once: the n dimension is split into blocks
// of kRowsPerBlock weight rows, each converted to fp32 once into a per-thread buffer (small
// enough for L2), then multiplied against every activation row with a 4x4 register tile.
// Decode (m = 1..few) is bound by reading w; prefill reuses each converted block m times.
#include <omp.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "common.h"

namespace {

constexpr int64_t kRowsPerBlock = 32;
constexpr int kTile = 4;

// Eight floats, one AVX register where the clone has AVX (two SSE registers in the default one).
typedef float Float8 __attribute__((vector_size(32)));
typedef uint16_t Bf16x8 __attribute__((vector_size(16)));
typedef uint32_t Uint32x8 __attribute__((vector_size(32)));

// c[i][j] = dot(x_i, w_j) for i < MR, j < NR, over k elements; the weights W are fp32, or bf16
// (uint16_t) read as stored and widened in registers (a bf16 is the high half of an fp32).
//
// NOTE: the MR x NR accumulators stay in registers for the whole of k, eight lanes each: every
// step loads MR activation vectors and NR weight vectors for MR * NR fused multiply-adds, so the
// loads no longer bound the arithmetic (a dot product at a time loaded two vectors per FMA).
template <typename W, int MR, int NR>
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void micro_tile(const float* x, int64_t x_stride, const W* w, int64_t w_stride, int64_t k,
                float* c /* [MR][kTile] */) {
  static_assert(std::is_same_v<W, float> || std::is_same_v<W, uint16_t>, "fp32 or bf16 weights");
  Float8 acc[MR][NR] = {};
  int64_t e = 0;
  for (; e + 8 <= k; e += 8) {
    Float8 xv[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) std::memcpy(&xv[r], x + r * x_stride + e, sizeof(Float8));
#pragma GCC unroll 4
    for (int s = 0; s < NR; ++s) {
      Float8 wv;
      if constexpr (std::is_same_v<W, float>) {
        std::memcpy(&wv, w + s * w_stride + e, sizeof(wv));
      } else {
        Bf16x8 half;
        std::memcpy(&half, w + s * w_stride + e, sizeof(half));
        const Uint32x8 bits = __builtin_convertvector(half, Uint32x8) << 16;
        std::memcpy(&wv, &bits, sizeof(wv));
      }
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) acc[r][s] += xv[r] * wv;
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int s = 0; s < NR; ++s) {
      float sum = 0.0f;
      for (int lane = 0; lane < 8; ++lane) sum += acc[r][s][lane];
      for (int64_t t = e; t < k; ++t) {
        const W weight = w[s * w_stride + t];
        if constexpr (std::is_same_v<W, float>) {
          sum += x[r * x_stride + t] * weight;
        } else {
          sum += x[r * x_stride + t] * kiln::bf16_to_f32(weight);
        }
      }
      c[r * kTile + s] = sum;
    }
  }
}

template <typename W>
using MicroTile = void (*)(const float*, int64_t, const W*, int64_t, int64_t, float*);

template <typename W, int MR, int NR>
constexpr MicroTile<W> tile_of() { return &micro_tile<W, MR, NR>; }

// Indexed [MR - 1][NR - 1].
template <typename W>
const MicroTile<W> kTiles[kTile][kTile] = {
    {tile_of<W, 1, 1>(), tile_of<W, 1, 2>(), tile_of<W, 1, 3>(), tile_of<W, 1, 4>()},
    {tile_of<W, 2, 1>(), tile_of<W, 2, 2>(), tile_of<W, 2, 3>(), tile_of<W, 2, 4>()},
    {tile_of<W, 3, 1>(), tile_of<W, 3, 2>(), tile_of<W, 3, 3>(), tile_of<W, 3, 4>()},
    {tile_of<W, 4, 1>(), tile_of<W, 4, 2>(), tile_of<W, 4, 3>(), tile_of<W, 4, 4>()},
};

// Up to this many activation rows a bf16 product widens its weights in registers; more rows reuse
// a block converted once to fp32.
constexpr int64_t kMaxRowsWidenedInRegisters = kTile;

}  // namespace

extern "C" int kiln_cpu_gemm(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                             const void* w, int w_dtype, const void* bias, int bias_dtype,
                             int64_t m, int64_t n, int64_t k) {
  KILN_CHECK_PTR(out);
  KILN_CHECK_PTR(x);
  KILN_CHECK_PTR(w);
  KILN_CHECK_DTYPE(w_dtype);
  KILN_CHECK(bias == nullptr || kiln::is_float_dtype(bias_dtype), "kiln_cpu_gemm: bad bias dtype %d", bias_dtype);
  KILN_CHECK(m >= 0 && n > 0 && k > 0, "kiln_cpu_gemm: bad sizes m=%lld n=%lld k=%lld",
             (long long)m, (long long)n, (long long)k);
  KILN_CHECK(x_stride >= k && out_stride >= n, "kiln_cpu_gemm: a row stride is too small");
  if (m == 0) return KILN_OK;

  const int64_t num_blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  const int64_t w_row_bytes = k * kiln::dtype_size(w_dtype);
#pragma omp parallel
  {
    const bool widen_in_registers = w_dtype == KILN_BF16 && m <= kMaxRowsWidenedInRegisters;
    std::vector<float> converted;
    if (w_dtype != KILN_F32 && !widen_in_registers) converted.resize(static_cast<size_t>(kRowsPerBlock * k));
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < num_blocks; ++block) {
      const int64_t n0 = block * kRowsPerBlock;
      const int64_t rows = n - n0 < kRowsPerBlock ? n - n0 : kRowsPerBlock;
      if (widen_in_registers) {
        const uint16_t* wb = static_cast<const uint16_t*>(w) + n0 * k;  // [rows, k]
        float tile[kTile * kTile];
        const int mr = static_cast<int>(m);
        for (int64_t j0 = 0; j0 < rows; j0 += kTile) {
          const int nr = static_cast<int>(rows - j0 < kTile ? rows - j0 : kTile);
          kTiles<uint16_t>[mr - 1][nr - 1](x, x_stride, wb + j0 * k, k, k, tile);
          for (int r = 0; r < mr; ++r) {
            float* dst = out + r * out_stride + n0 + j0;
            for (int s = 0; s < nr; ++s) {
              float value = tile[r * kTile + s];
              if (bias != nullptr) value += kiln::load_one(bias, bias_dtype, n0 + j0 + s);
              dst[s] = value;
            }
          }
        }
        continue;
      }
      const float* wf;
      if (w_dtype == KILN_F32) {
        wf = static_cast<const float*>(w) + n0 * k;
      } else {
        for (int64_t r = 0; r < rows; ++r)
          kiln::load_f32(converted.data() + r * k,
                         static_cast<const char*>(w) + (n0 + r) * w_row_bytes, w_dtype, k);
        wf = converted.data();
      }
      float tile[kTile * kTile];
      for (int64_t m0 = 0; m0 < m; m0 += kTile) {
        const int mr = static_cast<int>(m - m0 < kTile ? m - m0 : kTile);
        for (int64_t j0 = 0; j0 < rows; j0 += kTile) {
          const int nr = static_cast<int>(rows - j0 < kTile ? rows - j0 : kTile);
          kTiles<float>[mr - 1][nr - 1](x + m0 * x_stride, x_stride, wf + j0 * k, k, k, tile);
          for (int r = 0; r < mr; ++r) {
            float* dst = out + (m0 + r) * out_stride + n0 + j0;
            for (int s = 0; s < nr; ++s) {
              float value = tile[r * kTile + s];
              if (bias != nullptr) value += kiln::load_one(bias, bias_dtype, n0 + j0 + s);
              dst[s] = value;
            }
          }
        }
      }
    }
  }
  return KILN_OK;
}
