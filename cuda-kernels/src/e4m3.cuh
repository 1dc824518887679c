// e4m3 device helpers shared by the FP8 products and the FP8 KV cache: the conversions with
// kiln_cpu's rounding, the dynamic row-scale rule, and the widening of cached codes to the 16-bit
// type the attention kernels' tensor cores take.
#pragma once

#include <cuda_fp8.h>

#include "common.cuh"

namespace kiln {

constexpr float kE4m3Max = 448.0f;
// The smallest scale a row gets (FLT_MIN, as kiln_cpu's): its reciprocal is finite.
constexpr float kSmallestScale = 1.17549435e-38f;

// fp32 -> e4m3 as kiln_cpu_f32_to_e4m3: nearest even, +-448 on overflow (infinity too), NaN kept.
__device__ __forceinline__ uint8_t f32_to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ float e4m3_to_f32(uint8_t code) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(code), __NV_E4M3);
  return __half2float(__half(h));
}

// The larger of two magnitudes, NaN winning (as kiln_cpu_quantize_e4m3_inputs: a row holding a
// NaN must not get a finite scale).
__device__ __forceinline__ float nan_max(float a, float b) { return (b > a || isnan(b)) ? b : a; }

// The dynamic scale of a row whose largest magnitude is amax (kiln_cpu's rule: amax / 448,
// correctly rounded, raised to FLT_MIN where smaller but not 0; NaN stays NaN).
__device__ __forceinline__ float e4m3_row_scale(float amax) {
  float scale = __fdiv_rn(amax, kE4m3Max);
  if (scale > 0.0f && scale < kSmallestScale) scale = kSmallestScale;  // 1 / scale stays finite
  return scale;
}

// Two e4m3 codes (the low byte first) as two values of T, packed; exact, since every e4m3 value
// is a half and a bfloat16 value.
template <typename T>
__device__ __forceinline__ uint32_t e4m3x2_to_pack2(uint16_t codes);
template <>
__device__ __forceinline__ uint32_t e4m3x2_to_pack2<__half>(uint16_t codes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}
template <>
__device__ __forceinline__ uint32_t e4m3x2_to_pack2<__nv_bfloat16>(uint16_t codes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes), __NV_E4M3);
  const float2 f = __half22float2(__half2(h));
  return pack2<__nv_bfloat16>(f.x, f.y);
}

// Widens rows of e4m3 codes in shared memory to T in the attention kernels' swizzled layout: row r
// of `src` (kHeadDim codes, rows kHeadDim bytes apart) becomes row r of `dst` (kHeadDim / 8 chunks
// of 16 bytes, swizzled_offset). Threads `first`, first + stride, ... take 16 codes each.
template <typename T, int kHeadDim>
__device__ __forceinline__ void widen_e4m3_rows(uint8_t* dst, const uint8_t* src, int rows, int first, int stride) {
  constexpr int kCodeChunks = kHeadDim / 16;  // 16-code chunks per row
  for (int i = first; i < rows * kCodeChunks; i += stride) {
    const int r = i / kCodeChunks, c = i % kCodeChunks;
    const uint4 raw = *reinterpret_cast<const uint4*>(src + r * kHeadDim + c * 16);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    uint32_t wide[8];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      wide[2 * w] = e4m3x2_to_pack2<T>(static_cast<uint16_t>(words[w] & 0xffffu));
      wide[2 * w + 1] = e4m3x2_to_pack2<T>(static_cast<uint16_t>(words[w] >> 16));
    }
    *reinterpret_cast<uint4*>(dst + swizzled_offset<kHeadDim / 8>(r, 2 * c)) =
        make_uint4(wide[0], wide[1], wide[2], wide[3]);
    *reinterpret_cast<uint4*>(dst + swizzled_offset<kHeadDim / 8>(r, 2 * c + 1)) =
        make_uint4(wide[4], wide[5], wide[6], wide[7]);
  }
}

}  // namespace kiln
