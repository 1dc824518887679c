// Internal helpers of the CPU backend: error reporting and element conversion.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kiln_cpu.h"

namespace kiln {

// Sets the thread's last-error message (printf-style) and returns code.
int fail(int code, const char* format, ...) __attribute__((format(printf, 2, 3)));
void clear_error();

// Threads each op's parallel region runs on (kiln_cpu_set_num_threads).
int op_threads();

inline float bf16_to_f32(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, sizeof(out));
  return out;
}

// Round to nearest even, NaN kept a quiet NaN.
inline uint16_t f32_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float f16_to_f32(uint16_t bits) {
  _Float16 half;
  std::memcpy(&half, &bits, sizeof(half));
  return static_cast<float>(half);
}

inline uint16_t f32_to_f16(float value) {
  _Float16 half = static_cast<_Float16>(value);
  uint16_t bits;
  std::memcpy(&bits, &half, sizeof(bits));
  return bits;
}

inline bool is_float_dtype(int dtype) {
  return dtype == KILN_F32 || dtype == KILN_F16 || dtype == KILN_BF16;
}

inline int64_t dtype_size(int dtype) {
  switch (dtype) {
    case KILN_F32: return 4;
    case KILN_F16: return 2;
    case KILN_BF16: return 2;
    case KILN_I32: return 4;
    case KILN_I64: return 8;
    case KILN_I8: return 1;
    case KILN_F8_E4M3: return 1;
    default: return 0;
  }
}

// dst[0..n) = src[0..n) as fp32.
inline void load_f32(float* dst, const void* src, int dtype, int64_t n) {
  switch (dtype) {
    case KILN_F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case KILN_BF16: {
      const uint16_t* in = static_cast<const uint16_t*>(src);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(in[i]);
      break;
    }
    case KILN_F16: {
      const uint16_t* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(in[i]);
      break;
    }
    default:
      break;
  }
}

inline float load_one(const void* src, int dtype, int64_t i) {
  switch (dtype) {
    case KILN_F32: return static_cast<const float*>(src)[i];
    case KILN_BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case KILN_F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
    default: return NAN;
  }
}

// e4m3 conversions with the rounding kiln_cpu.h specifies (ops_fp8.cpp).
uint8_t f32_to_e4m3(float value);
float e4m3_to_f32(uint8_t code);
// The 256 values of the e4m3 codes, NaN for 0x7f and 0xff.
const float* e4m3_values();
// One row as e4m3 codes with its own scale, kiln_cpu_quantize_e4m3_inputs' dynamic rule: scale =
// amax / 448 (NaN where the row holds one, raised to FLT_MIN where smaller but not 0), codes of
// x * (1 / scale), all zero for a zero scale.
void quantize_e4m3_row(uint8_t* codes, float* scale, const float* x, int64_t n);
// kiln_cpu_quantize_e4m3_inputs without the argument checks.
void quantize_e4m3_inputs(float* xq, float* scales, const float* x, int64_t x_stride, int mode, float static_scale,
                          float scale_ub, int64_t m, int64_t k);

}  // namespace kiln

// Early-return helpers for argument checks; each names the argument that is wrong.
#define KILN_CHECK(cond, ...) \
  do {                                                              \
    if (!(cond)) return ::kiln::fail(KILN_ERR_INVALID_ARGUMENT, __VA_ARGS__); \
  } while (0)
#define KILN_CHECK_PTR(ptr) KILN_CHECK((ptr) != nullptr, "%s: " #ptr " is NULL", __func__)
#define KILN_CHECK_DTYPE(dtype) \
  KILN_CHECK(::kiln::is_float_dtype(dtype), "%s: unsupported dtype %d for " #dtype, __func__, (dtype))
