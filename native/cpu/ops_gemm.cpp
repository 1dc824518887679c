// out = x @ w^T + bias on the CPU, fp32 accumulation, weights in fp32, fp16, bf16, int8 or e4m3
// with a scale per row; and the int8 quantisation of weights.
//
// NOTE: weights are the large operand and are read once. The n dimension is split into blocks of
// weight rows, shared out over the threads, with the register tiles of gemm_tiles.cpp (the widest
// the CPU runs). Up to kMaxTileRows activation rows (decode) the tiles read the weights in their
// stored type and widen them in registers, so decode is bound by reading the weights once in their
// stored size. With more rows (prompts, decode batches) the activations are packed into panels and
// each block of weights is widened once to fp32, then multiplied as outer products, bound by
// arithmetic (from 5 rows on: at 5 to 12 rows of the Llama-3.2-1B shape's step, as fast as the
// dot-product tiles or up to 1.4x faster on every level).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "common.h"
#include "gemm_tiles.h"
#include "quantize_rows.h"

namespace {

using kiln::gemm::Kernels;
using kiln::gemm::kMaxTileCols;
using kiln::gemm::kMaxTileRows;

constexpr int64_t kRowsPerBlock = 32;
constexpr int64_t kStreamBlockBytes = 128 << 10;
constexpr int64_t kMaxRowsPerStreamBlock = 256;

const Kernels* widest_supported() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return &kiln::gemm::kernels_x86_64_v4();
  if (__builtin_cpu_supports("x86-64-v3")) return &kiln::gemm::kernels_x86_64_v3();
  return &kiln::gemm::kernels_baseline();
}

std::atomic<const Kernels*> g_kernels{nullptr};

const Kernels& kernels() {
  const Kernels* chosen = g_kernels.load(std::memory_order_acquire);
  if (chosen == nullptr) {
    chosen = widest_supported();
    g_kernels.store(chosen, std::memory_order_release);
  }
  return *chosen;
}

int weight_type_of(int dtype) {
  switch (dtype) {
    case KILN_F32: return kiln::gemm::kWeightF32;
    case KILN_BF16: return kiln::gemm::kWeightBf16;
    case KILN_F16: return kiln::gemm::kWeightF16;
    case KILN_I8: return kiln::gemm::kWeightI8;
    default: return -1;
  }
}

// Writes tile rows [0, mr) x columns [0, nr) at out[0.., col0..], times the rows' scales (int8
// weights read as stored) and plus the bias.
inline void store_tile(const float* tile, int mr, int nr, float* out, int64_t out_stride, int64_t col0,
                       const float* scales, const void* bias, int bias_dtype) {
  for (int r = 0; r < mr; ++r) {
    float* dst = out + r * out_stride + col0;
    for (int s = 0; s < nr; ++s) {
      float value = tile[r * kMaxTileCols + s];
      if (scales != nullptr) value *= scales[col0 + s];
      if (bias != nullptr) value += kiln::load_one(bias, bias_dtype, col0 + s);
      dst[s] = value;
    }
  }
}

// Activation rows packed at a time: their panels, k-major, stay within L2 / L3 while every weight
// row block passes over them.
constexpr int64_t kRowsPerChunk = 256;

// out rows [0, m) over panels: a chunk of activation rows is packed into panels of 2 * lanes rows
// (the last one narrower and zero-padded), then each thread takes blocks of panel_rows weight rows,
// widens them to fp32 once (scales applied) and runs every panel of the chunk over them.
int gemm_panels(const Kernels& kern, float* out, int64_t out_stride, const float* x, int64_t x_stride,
                const void* w, int w_dtype, const float* w_scales, const void* bias, int bias_dtype, int64_t m,
                int64_t n, int64_t k) {
  const int type = weight_type_of(w_dtype);
  const int64_t w_row_bytes = k * kiln::dtype_size(w_dtype);
  const int lanes = kern.lanes;
  const int64_t panel_width = 2 * lanes;  // activation rows of a full panel
  const int64_t block_rows = kern.panel_rows;
  const int64_t num_blocks = (n + block_rows - 1) / block_rows;
  const int64_t chunk_capacity = (kRowsPerChunk + panel_width - 1) / panel_width * panel_width;
  std::vector<float> packed(static_cast<size_t>(chunk_capacity * k));  // [panels][k][panel_width]
  for (int64_t chunk0 = 0; chunk0 < m; chunk0 += kRowsPerChunk) {
    const int64_t chunk_rows = m - chunk0 < kRowsPerChunk ? m - chunk0 : kRowsPerChunk;
    const int64_t num_panels = (chunk_rows + panel_width - 1) / panel_width;
#pragma omp parallel num_threads(kiln::op_threads())
    {
#pragma omp for schedule(static)
      for (int64_t p = 0; p < num_panels; ++p) {
        const int64_t row0 = chunk0 + p * panel_width;
        const int64_t rows = chunk0 + chunk_rows - row0 < panel_width ? chunk0 + chunk_rows - row0 : panel_width;
        const int64_t width = (rows + lanes - 1) / lanes * lanes;  // NV * lanes
        float* dst = packed.data() + p * k * panel_width;          // [k][width]
        for (int64_t t = 0; t < width; ++t) {
          const float* src = x + (row0 + t) * x_stride;
          if (t < rows) {
            for (int64_t e = 0; e < k; ++e) dst[e * width + t] = src[e];
          } else {
            for (int64_t e = 0; e < k; ++e) dst[e * width + t] = 0.0f;
          }
        }
      }
      std::vector<float> widened;
      if (type != kiln::gemm::kWeightF32) widened.resize(static_cast<size_t>(block_rows * k));
      float tile[kiln::gemm::kMaxPanelRows * 2 * kiln::gemm::kMaxLanes];
#pragma omp for schedule(dynamic, 1)
      for (int64_t block = 0; block < num_blocks; ++block) {
        const int64_t n0 = block * block_rows;
        const int64_t rows = n - n0 < block_rows ? n - n0 : block_rows;
        const char* block_weights = static_cast<const char*>(w) + n0 * w_row_bytes;  // [rows, k]
        const float* wf = reinterpret_cast<const float*>(block_weights);
        if (type != kiln::gemm::kWeightF32) {
          for (int64_t r = 0; r < rows; ++r) {
            kern.widen[type](widened.data() + r * k, block_weights + r * w_row_bytes,
                             w_scales != nullptr ? w_scales[n0 + r] : 1.0f, k);
          }
          wf = widened.data();  // [rows, k] fp32, scales applied
        }
        for (int64_t p = 0; p < num_panels; ++p) {
          const int64_t row0 = chunk0 + p * panel_width;
          const int64_t panel_rows = chunk0 + chunk_rows - row0 < panel_width ? chunk0 + chunk_rows - row0
                                                                             : panel_width;
          const int vectors = static_cast<int>((panel_rows + lanes - 1) / lanes);
          const int64_t width = vectors * lanes;
          // The first panel asks for the next block's weights while it computes (its rows follow
          // these in memory; the next block is usually this thread's too, and at worst the line is
          // read twice).
          const char* next_block = block_weights + rows * w_row_bytes;
          const int64_t next_lines = p == 0 && block + 1 < num_blocks
              ? std::min<int64_t>(k, (std::min<int64_t>(block_rows, n - n0 - rows) * w_row_bytes + 63) / 64)
              : 0;
          kern.panels[rows - 1][vectors - 1](packed.data() + p * k * panel_width, wf, k, k, tile, next_block,
                                             next_lines);  // tile: [rows][width]
          for (int64_t t = 0; t < panel_rows; ++t) {
            float* dst = out + (row0 + t) * out_stride + n0;
            for (int64_t r = 0; r < rows; ++r) {
              float value = tile[r * width + t];
              if (bias != nullptr) value += kiln::load_one(bias, bias_dtype, n0 + r);
              dst[r] = value;
            }
          }
        }
      }
    }
  }
  return KILN_OK;
}

int gemm(float* out, int64_t out_stride, const float* x, int64_t x_stride, const void* w, int w_dtype,
         const float* w_scales, const void* bias, int bias_dtype, int64_t m, int64_t n, int64_t k) {
  const Kernels& kern = kernels();
  if (m > kMaxTileRows) {
    return gemm_panels(kern, out, out_stride, x, x_stride, w, w_dtype, w_scales, bias, bias_dtype, m, n, k);
  }
  const int type = weight_type_of(w_dtype);
  const int64_t w_row_bytes = k * kiln::dtype_size(w_dtype);
  // NOTE: a block is about kStreamBlockBytes of weights: each block ends a thread's streams and
  // wastes the prefetches past its end, so short rows get more of them (the 154M shape's decode
  // products, 1-2 KiB rows: 40-43 GB/s int8 and 54-56 bf16 in blocks of 32 rows, 51-53 and 53-64
  // in blocks of 128).
  const int64_t rows_per_block = std::min<int64_t>(
      kMaxRowsPerStreamBlock, std::max<int64_t>(kRowsPerBlock, kStreamBlockBytes / w_row_bytes));
  const int64_t num_blocks = (n + rows_per_block - 1) / rows_per_block;
#pragma omp parallel num_threads(kiln::op_threads())
  {
    float tile[kMaxTileRows * kMaxTileCols];
    const int mr = static_cast<int>(m);
    const int64_t tile_cols = kern.tile_cols[mr - 1];
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < num_blocks; ++block) {
      const int64_t n0 = block * rows_per_block;
      const int64_t rows = n - n0 < rows_per_block ? n - n0 : rows_per_block;
      const char* block_weights = static_cast<const char*>(w) + n0 * w_row_bytes;  // [rows, k] w_dtype
      for (int64_t j0 = 0; j0 < rows; j0 += tile_cols) {
        const int nr = static_cast<int>(rows - j0 < tile_cols ? rows - j0 : tile_cols);
        // The tiles take the element stride; every weight type's row is k elements.
        kern.tiles[type][mr - 1][nr - 1](x, x_stride, block_weights + j0 * w_row_bytes, k, k, tile);
        store_tile(tile, mr, nr, out, out_stride, n0 + j0, w_scales, bias, bias_dtype);
      }
    }
  }
  return KILN_OK;
}

// The FP8 GEMM (kiln_cpu_gemm_f8): the inputs are quantised once into xq, then each thread takes
// blocks of weight rows, decodes them from their e4m3 bytes to fp32 (unscaled: the scales apply
// to the finished sums, as kiln_cpu.h specifies) and runs the fp32 register tiles over every group
// of up to kMaxTileRows activation rows.
// NOTE: prompts take the dot-product tiles here, not the packed panels of gemm_panels; a block's
// weights are decoded once whatever m is, so decode reads one byte per weight.
int gemm_f8(float* out, int64_t out_stride, const float* x, int64_t x_stride, const uint8_t* w,
            const float* w_scales, int input_mode, float input_scale, float input_scale_ub, const void* bias,
            int bias_dtype, int64_t m, int64_t n, int64_t k) {
  const Kernels& kern = kernels();
  std::vector<float> xq(static_cast<size_t>(m * k));  // [m, k] the quantised inputs, e4m3 values
  std::vector<float> x_scales(static_cast<size_t>(m));  // [m]
  kiln::quantize_e4m3_inputs(xq.data(), x_scales.data(), x, x_stride, input_mode, input_scale, input_scale_ub, m, k);
  const float* values = kiln::e4m3_values();
  const int64_t rows_per_block =
      std::min<int64_t>(kMaxRowsPerStreamBlock, std::max<int64_t>(kRowsPerBlock, kStreamBlockBytes / k));
  const int64_t num_blocks = (n + rows_per_block - 1) / rows_per_block;
#pragma omp parallel num_threads(kiln::op_threads())
  {
    std::vector<float> decoded(static_cast<size_t>(rows_per_block * k));  // [rows, k] e4m3 values
    float tile[kMaxTileRows * kMaxTileCols];
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < num_blocks; ++block) {
      const int64_t n0 = block * rows_per_block;
      const int64_t rows = n - n0 < rows_per_block ? n - n0 : rows_per_block;
      const uint8_t* codes = w + n0 * k;  // [rows, k]
      for (int64_t e = 0; e < rows * k; ++e) decoded[e] = values[codes[e]];
      for (int64_t i0 = 0; i0 < m; i0 += kMaxTileRows) {
        const int mr = static_cast<int>(m - i0 < kMaxTileRows ? m - i0 : kMaxTileRows);
        const int64_t tile_cols = kern.tile_cols[mr - 1];
        for (int64_t j0 = 0; j0 < rows; j0 += tile_cols) {
          const int nr = static_cast<int>(rows - j0 < tile_cols ? rows - j0 : tile_cols);
          kern.tiles[kiln::gemm::kWeightF32][mr - 1][nr - 1](xq.data() + i0 * k, k, decoded.data() + j0 * k, k, k,
                                                            tile);
          for (int r = 0; r < mr; ++r) {
            float* dst = out + (i0 + r) * out_stride + n0 + j0;
            for (int s = 0; s < nr; ++s) {
              float value = tile[r * kMaxTileCols + s] * (x_scales[i0 + r] * w_scales[n0 + j0 + s]);
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

int check_gemm_sizes(const void* out, const void* x, const void* w, const void* bias, int bias_dtype, int64_t m,
                     int64_t n, int64_t k, int64_t x_stride, int64_t out_stride, const char* name) {
  if (out == nullptr || x == nullptr || w == nullptr) {
    return kiln::fail(KILN_ERR_INVALID_ARGUMENT, "%s: out, x and w must not be NULL", name);
  }
  if (bias != nullptr && !kiln::is_float_dtype(bias_dtype)) {
    return kiln::fail(KILN_ERR_INVALID_ARGUMENT, "%s: bad bias dtype %d", name, bias_dtype);
  }
  if (m < 0 || n <= 0 || k <= 0) {
    return kiln::fail(KILN_ERR_INVALID_ARGUMENT, "%s: bad sizes m=%lld n=%lld k=%lld", name, (long long)m,
                      (long long)n, (long long)k);
  }
  if (x_stride < k || out_stride < n) {
    return kiln::fail(KILN_ERR_INVALID_ARGUMENT, "%s: a row stride is too small", name);
  }
  return KILN_OK;
}

}  // namespace

extern "C" int kiln_cpu_gemm(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                             const void* w, int w_dtype, const void* bias, int bias_dtype,
                             int64_t m, int64_t n, int64_t k) {
  KILN_CHECK_DTYPE(w_dtype);
  const int status = check_gemm_sizes(out, x, w, bias, bias_dtype, m, n, k, x_stride, out_stride, __func__);
  if (status != KILN_OK) return status;
  if (m == 0) return KILN_OK;
  return gemm(out, out_stride, x, x_stride, w, w_dtype, nullptr, bias, bias_dtype, m, n, k);
}

extern "C" int kiln_cpu_gemm_i8(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                                const int8_t* w, const float* w_scales, const void* bias, int bias_dtype,
                                int64_t m, int64_t n, int64_t k) {
  KILN_CHECK_PTR(w_scales);
  const int status = check_gemm_sizes(out, x, w, bias, bias_dtype, m, n, k, x_stride, out_stride, __func__);
  if (status != KILN_OK) return status;
  if (m == 0) return KILN_OK;
  return gemm(out, out_stride, x, x_stride, w, KILN_I8, w_scales, bias, bias_dtype, m, n, k);
}

extern "C" int kiln_cpu_gemm_f8(float* out, int64_t out_stride, const float* x, int64_t x_stride, const uint8_t* w,
                                const float* w_scales, int input_mode, float input_scale, float input_scale_ub,
                                const void* bias, int bias_dtype, int64_t m, int64_t n, int64_t k) {
  KILN_CHECK_PTR(w_scales);
  KILN_CHECK(input_mode == KILN_FP8_INPUT_NONE || input_mode == KILN_FP8_INPUT_DYNAMIC_PER_TOKEN
                 || input_mode == KILN_FP8_INPUT_STATIC_PER_TENSOR,
             "kiln_cpu_gemm_f8: unknown input mode %d", input_mode);
  KILN_CHECK(input_mode != KILN_FP8_INPUT_STATIC_PER_TENSOR || (std::isfinite(input_scale) && input_scale > 0.0f),
             "kiln_cpu_gemm_f8: a static input scale must be positive and finite, got %g",
             static_cast<double>(input_scale));
  const int status = check_gemm_sizes(out, x, w, bias, bias_dtype, m, n, k, x_stride, out_stride, __func__);
  if (status != KILN_OK) return status;
  if (m == 0) return KILN_OK;
  return gemm_f8(out, out_stride, x, x_stride, w, w_scales, input_mode, input_scale, input_scale_ub, bias, bias_dtype,
                 m, n, k);
}

extern "C" int kiln_cpu_quantize_i8_rows(int8_t* dst, float* scales, const void* src, int src_dtype,
                                         int64_t rows, int64_t cols) {
  // Symmetric: q = round(v / scale) in [-127, 127], v ~ q * scale.
  // NOTE: lrint rounds half to even (the default rounding mode), like Python's round and
  // torch.round; with -fno-math-errno it is one instruction rather than a libm call.
  KILN_CHECK_PTR(dst);
  KILN_CHECK_PTR(scales);
  KILN_CHECK_PTR(src);
  KILN_CHECK_DTYPE(src_dtype);
  return kiln::quantize_rows("kiln_cpu_quantize_i8_rows", dst, scales, src, src_dtype, rows, cols, 127.0f,
                             [](float v) {
                               const long q = std::lrint(v);
                               return static_cast<int8_t>(q > 127 ? 127 : (q < -127 ? -127 : q));
                             });
}

extern "C" const char* kiln_cpu_gemm_kernels(void) { return kernels().name; }

extern "C" int kiln_cpu_set_gemm_level(int level) {
  __builtin_cpu_init();
  switch (level) {
    case -1:
      g_kernels.store(widest_supported(), std::memory_order_release);
      return KILN_OK;
    case 4:
      if (!__builtin_cpu_supports("x86-64-v4")) break;
      g_kernels.store(&kiln::gemm::kernels_x86_64_v4(), std::memory_order_release);
      return KILN_OK;
    case 3:
      if (!__builtin_cpu_supports("x86-64-v3")) break;
      g_kernels.store(&kiln::gemm::kernels_x86_64_v3(), std::memory_order_release);
      return KILN_OK;
    case 0:
      g_kernels.store(&kiln::gemm::kernels_baseline(), std::memory_order_release);
      return KILN_OK;
    default:
      return kiln::fail(KILN_ERR_INVALID_ARGUMENT, "kiln_cpu_set_gemm_level: level %d is not 4, 3, 0 or -1", level);
  }
  return kiln::fail(KILN_ERR_UNSUPPORTED, "kiln_cpu_set_gemm_level: this CPU does not run x86-64-v%d", level);
}
