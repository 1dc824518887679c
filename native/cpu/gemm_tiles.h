// The GEMM's inner kernels, compiled once per x86-64 level (gemm_tiles.cpp) and chosen at run time
// by the CPU's features (ops_gemm.cpp): AVX-512 (x86-64-v4), AVX2 + FMA + F16C (x86-64-v3), and a
// portable SSE2 baseline.
//
// NOTE: this header declares plain data and functions only. Each level's object is compiled with
// its own -march, so an inline function or template shared with the rest of the library could be
// emitted there with that level's instructions and picked by the linker for every caller.
#pragma once

#include <cstdint>

namespace kiln::gemm {

// The most rows and weight columns of one register tile.
constexpr int kMaxTileRows = 4;
constexpr int kMaxTileCols = 4;

// The weight element types the tiles read, in their stored form.
enum WeightType { kWeightF32 = 0, kWeightBf16 = 1, kWeightF16 = 2, kWeightI8 = 3, kNumWeightTypes = 4 };

// c[r * kMaxTileCols + s] = dot(x row r, w row s) over k elements, r < MR, s < NR; the weights are
// read in their stored type (w: const float*, bf16 / fp16 bits as const uint16_t*, or const int8_t*)
// and widened in registers. int8 weights give the dot product of the integer values (the caller
// applies the row's scale).
using TileFn = void (*)(const float* x, int64_t x_stride, const void* w, int64_t w_stride, int64_t k,
                        float* c);

// dst[i] = scale * src[i] for i < n, src in the stored type (scale applies to int8 only).
using WidenFn = void (*)(float* dst, const void* src, float scale, int64_t n);

// The most floats of one vector register (AVX-512's 16).
constexpr int kMaxLanes = 16;

// The most weight rows of one panel tile (AVX-512's; narrower levels use fewer).
constexpr int kMaxPanelRows = 12;

// Prompt-sized products, as outer products: c[r * NV * lanes + t] = dot(w row r, x column t) for
// r < rows and t < NV * lanes, over k, where x_panel is a packed block of NV * lanes activation
// rows stored k-major (x_panel[e * NV * lanes + t] = x[t][e]) and w is fp32. Every step loads NV
// activation vectors and broadcasts one weight per row, so the loads stay well below the
// multiply-adds and nothing needs a horizontal sum.
// prefetch: the first prefetch_lines cache lines from there are asked for along the way (the
// weights of the caller's next block, so that reading them overlaps this block's arithmetic);
// prefetch_lines <= k.
using PanelFn = void (*)(const float* x_panel, const float* w, int64_t w_stride, int64_t k, float* c,
                         const char* prefetch, int64_t prefetch_lines);

struct Kernels {
  const char* name;
  TileFn tiles[kNumWeightTypes][kMaxTileRows][kMaxTileCols];  // [type][MR - 1][NR - 1]
  WidenFn widen[kNumWeightTypes];
  int tile_cols[kMaxTileRows];  // [MR - 1]: the weight rows of a tile at MR activation rows
  int lanes;       // floats per vector register
  int panel_rows;  // weight rows of a full panel tile, <= kMaxPanelRows
  PanelFn panels[kMaxPanelRows][2];  // [rows - 1][NV - 1], rows <= panel_rows
};

const Kernels& kernels_x86_64_v4();
const Kernels& kernels_x86_64_v3();
const Kernels& kernels_baseline();

}  // namespace kiln::gemm
