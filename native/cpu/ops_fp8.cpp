// FP8 (e4m3) on the CPU: conversion with the rounding kiln_cpu.h specifies, the quantisation of
// activation rows the FP8 GEMM multiplies, and the per-row quantisation of weights loaded from a
// float checkpoint. The GEMM itself is in ops_gemm.cpp, beside the other weight types.
#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "common.h"
#include "quantize_rows.h"

namespace kiln {

namespace {

constexpr float kE4m3Max = 448.0f;
constexpr float kE4m3MinNormal = 0.015625f;  // 2^-6
constexpr uint8_t kE4m3MaxCode = 0x7e;
constexpr uint8_t kE4m3NanCode = 0x7f;

struct E4m3Table {
  float values[256];
  E4m3Table() {
    for (int code = 0; code < 256; ++code) {
      const int exponent = (code >> 3) & 0xf;
      const int mantissa = code & 0x7;
      float magnitude;
      if ((code & 0x7f) == kE4m3NanCode) {
        magnitude = NAN;
      } else if (exponent == 0) {
        magnitude = std::ldexp(static_cast<float>(mantissa), -9);
      } else {
        magnitude = std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
      }
      values[code] = (code & 0x80) != 0 ? -magnitude : magnitude;
    }
  }
};

const E4m3Table& table() {
  static const E4m3Table instance;
  return instance;
}

}  // namespace

const float* e4m3_values() { return table().values; }

float e4m3_to_f32(uint8_t code) { return table().values[code]; }

uint8_t f32_to_e4m3(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t magnitude_bits = bits & 0x7fffffffu;
  if (magnitude_bits > 0x7f800000u) return sign | kE4m3NanCode;
  float magnitude;
  std::memcpy(&magnitude, &magnitude_bits, sizeof(magnitude));
  if (magnitude >= kE4m3Max) return sign | kE4m3MaxCode;  // saturating, infinity included
  if (magnitude < kE4m3MinNormal) {
    // Subnormal steps of 2^-9: the scaling by 512 is exact, nearbyint rounds half to even, and a
    // result of 8 is the code of the smallest normal (exponent 1, mantissa 0).
    return sign | static_cast<uint8_t>(std::nearbyint(magnitude * 512.0f));
  }
  // Normal: keep 3 of fp32's 23 mantissa bits, ties to even (a carry moves into the exponent).
  const uint32_t rounded = magnitude_bits + 0x7ffffu + ((magnitude_bits >> 20) & 1u);
  const int exponent = static_cast<int>(rounded >> 23) - 127 + 7;  // 1..15, as magnitude < 448
  const uint32_t code = (static_cast<uint32_t>(exponent) << 3) | ((rounded >> 20) & 0x7u);
  return sign | static_cast<uint8_t>(code > kE4m3MaxCode ? kE4m3MaxCode : code);
}

void quantize_e4m3_row(uint8_t* codes, float* scale_out, const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t c = 0; c < n; ++c) {
    const float magnitude = std::fabs(x[c]);
    amax = magnitude > amax || std::isnan(magnitude) ? magnitude : amax;  // a NaN wins, as below
  }
  float scale = amax / kE4m3Max;
  if (scale > 0.0f && scale < kSmallestScale) scale = kSmallestScale;  // 1 / scale stays finite
  *scale_out = scale;
  if (scale == 0.0f) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return;
  }
  const float inverse = 1.0f / scale;
  for (int64_t c = 0; c < n; ++c) codes[c] = f32_to_e4m3(x[c] * inverse);
}

void quantize_e4m3_inputs(float* xq, float* scales, const float* x, int64_t x_stride, int mode, float static_scale,
                          float scale_ub, int64_t m, int64_t k) {
  const float* values = table().values;
#pragma omp parallel for schedule(static) num_threads(op_threads()) if (m * k > (1 << 16))
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * x_stride;  // [k]
    float* out = xq + i * k;             // [k]
    if (mode == KILN_FP8_INPUT_NONE) {
      std::memcpy(out, row, static_cast<size_t>(k) * sizeof(float));
      scales[i] = 1.0f;
      continue;
    }
    float scale = static_scale;
    if (mode == KILN_FP8_INPUT_DYNAMIC_PER_TOKEN) {
      float amax = 0.0f;
      for (int64_t c = 0; c < k; ++c) {
        const float magnitude = std::fabs(row[c]);
        // NOTE: written so that a NaN wins, as torch's amax lets it: a row with a NaN must not
        // come out finite.
        amax = magnitude > amax || std::isnan(magnitude) ? magnitude : amax;
      }
      if (scale_ub > 0.0f && amax > scale_ub) amax = scale_ub;
      scale = amax / kE4m3Max;
    }
    if (scale > 0.0f && scale < kSmallestScale) scale = kSmallestScale;  // 1 / scale stays finite
    scales[i] = scale;
    if (scale == 0.0f) {
      std::memset(out, 0, static_cast<size_t>(k) * sizeof(float));
      continue;
    }
    const float inverse = 1.0f / scale;
    for (int64_t c = 0; c < k; ++c) out[c] = values[f32_to_e4m3(row[c] * inverse)];
  }
}

}  // namespace kiln

extern "C" int kiln_cpu_f32_to_e4m3(uint8_t* dst, const float* src, int64_t n) {
  KILN_CHECK_PTR(dst);
  KILN_CHECK_PTR(src);
  KILN_CHECK(n >= 0, "kiln_cpu_f32_to_e4m3: bad size %lld", (long long)n);
  for (int64_t i = 0; i < n; ++i) dst[i] = kiln::f32_to_e4m3(src[i]);
  return KILN_OK;
}

extern "C" int kiln_cpu_e4m3_to_f32(float* dst, const uint8_t* src, int64_t n) {
  KILN_CHECK_PTR(dst);
  KILN_CHECK_PTR(src);
  KILN_CHECK(n >= 0, "kiln_cpu_e4m3_to_f32: bad size %lld", (long long)n);
  const float* values = kiln::e4m3_values();
  for (int64_t i = 0; i < n; ++i) dst[i] = values[src[i]];
  return KILN_OK;
}

extern "C" int kiln_cpu_quantize_e4m3_inputs(float* xq, float* scales, const float* x, int64_t x_stride, int mode,
                                             float static_scale, float scale_ub, int64_t m, int64_t k) {
  KILN_CHECK_PTR(xq);
  KILN_CHECK_PTR(scales);
  KILN_CHECK_PTR(x);
  KILN_CHECK(m >= 0 && k > 0 && x_stride >= k, "kiln_cpu_quantize_e4m3_inputs: bad sizes m=%lld k=%lld stride=%lld",
             (long long)m, (long long)k, (long long)x_stride);
  KILN_CHECK(mode == KILN_FP8_INPUT_NONE || mode == KILN_FP8_INPUT_DYNAMIC_PER_TOKEN
                 || mode == KILN_FP8_INPUT_STATIC_PER_TENSOR,
             "kiln_cpu_quantize_e4m3_inputs: unknown input mode %d", mode);
  KILN_CHECK(mode != KILN_FP8_INPUT_STATIC_PER_TENSOR || (std::isfinite(static_scale) && static_scale > 0.0f),
             "kiln_cpu_quantize_e4m3_inputs: a static input scale must be positive and finite, got %g",
             static_cast<double>(static_scale));
  kiln::quantize_e4m3_inputs(xq, scales, x, x_stride, mode, static_scale, scale_ub, m, k);
  return KILN_OK;
}

extern "C" int kiln_cpu_quantize_f8_rows(uint8_t* dst, float* scales, const void* src, int src_dtype, int64_t rows,
                                         int64_t cols) {
  KILN_CHECK_PTR(dst);
  KILN_CHECK_PTR(scales);
  KILN_CHECK_PTR(src);
  KILN_CHECK_DTYPE(src_dtype);
  return kiln::quantize_rows("kiln_cpu_quantize_f8_rows", dst, scales, src, src_dtype, rows, cols, 448.0f,
                             [](float v) { return kiln::f32_to_e4m3(v); });
}
