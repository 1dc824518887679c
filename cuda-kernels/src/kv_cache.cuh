// KV-cache write through the slot mapping, optionally fused with rotary: q is rotated in place,
// k is rotated on its way into the cache, v is copied (or, into an FP8 cache, quantised). One
// block per token.
#pragma once

#include "e4m3.cuh"
#include "layer_ops.cuh"

namespace kiln {

struct KvWriteParams {
  void* q;                 // [num_tokens, num_q_heads, head_dim] or nullptr (rotary only)
  const void* k;           // [num_tokens, num_kv_heads, head_dim], token stride k_stride
  const void* v;           // [num_tokens, num_kv_heads, head_dim], token stride v_stride
  void* k_cache;           // [num_slots, num_kv_heads, head_dim] of T, or e4m3 codes
  void* v_cache;           // [num_slots, num_kv_heads, head_dim] of T, or e4m3 codes
  const int32_t* slot_mapping;  // [num_tokens]
  const int32_t* positions;     // [num_tokens] (rotary only)
  const float* cos_sin;         // [max_position, head_dim] (rotary only)
  int64_t q_stride, k_stride, v_stride;
  int64_t num_q_heads, num_kv_heads, head_dim, num_slots, max_position;
  int is_neox;
  float* k_scales;         // [num_slots, num_kv_heads] (FP8 cache only)
  float* v_scales;         // [num_slots, num_kv_heads] (FP8 cache only)
};

template <typename T, bool kRotary>
__global__ void kv_write_kernel(KvWriteParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t token = blockIdx.x;
  const int32_t slot = p.slot_mapping[token];
  const bool write = slot >= 0 && slot < p.num_slots;
  const int chunks = static_cast<int>(p.head_dim / 8);  // 8-element chunks per head
  const int64_t kv_items = write ? p.num_kv_heads * chunks : 0;
  const int64_t row = p.num_kv_heads * p.head_dim;
  const T* k = static_cast<const T*>(p.k) + token * p.k_stride;
  const T* v = static_cast<const T*>(p.v) + token * p.v_stride;
  T* kc = static_cast<T*>(p.k_cache) + static_cast<int64_t>(write ? slot : 0) * row;
  T* vc = static_cast<T*>(p.v_cache) + static_cast<int64_t>(write ? slot : 0) * row;

  if constexpr (kRotary) {
    const int32_t pos = p.positions[token];
    const bool rotate = pos >= 0 && pos < p.max_position;
    const int half = static_cast<int>(p.head_dim / 2);
    const int groups = half / 4;  // a group is four pairs = 8 elements
    const float* cos = p.cos_sin + static_cast<int64_t>(rotate ? pos : 0) * p.head_dim;
    const float* sin = cos + half;
    const int64_t q_items = p.q != nullptr ? p.num_q_heads * groups : 0;
    const int64_t k_items = write ? p.num_kv_heads * groups : 0;
    for (int64_t item = threadIdx.x; item < q_items + k_items + kv_items; item += blockDim.x) {
      if (item < q_items) {
        if (!rotate) continue;
        T* head = static_cast<T*>(p.q) + token * p.q_stride + (item / groups) * p.head_dim;
        rotate_group<T>(head, head, static_cast<int>(item % groups), half, cos, sin, p.is_neox != 0);
      } else if (item < q_items + k_items) {
        const int64_t i = item - q_items;
        const int64_t h = i / groups;
        const int g = static_cast<int>(i % groups);
        if (rotate) {
          rotate_group<T>(k + h * p.head_dim, kc + h * p.head_dim, g, half, cos, sin, p.is_neox != 0);
        } else {  // unrotated copy of the same eight elements
          const int e = p.is_neox ? g * 4 : g * 8;
          if (p.is_neox) {
            copy_elements<4>(kc + h * p.head_dim + e, k + h * p.head_dim + e);
            copy_elements<4>(kc + h * p.head_dim + e + half, k + h * p.head_dim + e + half);
          } else {
            copy_elements<8>(kc + h * p.head_dim + e, k + h * p.head_dim + e);
          }
        }
      } else {
        const int64_t i = item - q_items - k_items;
        const int64_t h = i / chunks, c = i % chunks;
        copy_elements<8>(vc + h * p.head_dim + c * 8, v + h * p.head_dim + c * 8);
      }
    }
  } else {
    for (int64_t item = threadIdx.x; item < 2 * kv_items; item += blockDim.x) {
      const bool is_v = item >= kv_items;
      const int64_t i = is_v ? item - kv_items : item;
      const int64_t h = i / chunks, c = i % chunks;
      const T* src = (is_v ? v : k) + h * p.head_dim;
      T* dst = (is_v ? vc : kc) + h * p.head_dim;
      copy_elements<8>(dst + c * 8, src + c * 8);
    }
  }
}

// Most elements of a head an FP8 write holds in registers: a lane keeps kMaxPairsPerLane pairs.
constexpr int kE4m3MaxPairsPerLane = 4;
constexpr int kE4m3MaxHeadDim = 64 * kE4m3MaxPairsPerLane;

// The write into an FP8 cache: each (token, KV head) row of K and of V becomes e4m3 codes with a
// scale of its own (kiln_cpu_write_kv_cache_e4m3's rule), one warp a row, the row in registers.
// With rotary, q heads are rotated as in kv_write_kernel and k is rotated then rounded to T
// before it is quantised, so the fused write equals rotary followed by the plain FP8 write.
template <typename T, bool kRotary>
__global__ void kv_write_e4m3_kernel(KvWriteParams p) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t token = blockIdx.x;
  const int32_t slot = p.slot_mapping[token];
  const bool write = slot >= 0 && slot < p.num_slots;
  const int half = static_cast<int>(p.head_dim / 2);
  const int32_t pos = kRotary ? p.positions[token] : 0;
  const bool rotate = kRotary && pos >= 0 && pos < p.max_position;
  const float* cos = kRotary ? p.cos_sin + static_cast<int64_t>(rotate ? pos : 0) * p.head_dim : nullptr;
  const float* sin = cos + half;
  if constexpr (kRotary) {
    const int groups = half / 4;  // a group is four pairs = 8 elements
    const int64_t q_items = p.q != nullptr && rotate ? p.num_q_heads * groups : 0;
    for (int64_t item = threadIdx.x; item < q_items; item += blockDim.x) {
      T* head = static_cast<T*>(p.q) + token * p.q_stride + (item / groups) * p.head_dim;
      rotate_group<T>(head, head, static_cast<int>(item % groups), half, cos, sin, p.is_neox != 0);
    }
  }
  if (!write) return;
  const int lane = threadIdx.x & 31;
  const int warps = static_cast<int>(blockDim.x >> 5);
  for (int64_t row = threadIdx.x >> 5; row < 2 * p.num_kv_heads; row += warps) {
    const bool is_v = row >= p.num_kv_heads;
    const int64_t h = is_v ? row - p.num_kv_heads : row;
    const T* src = (is_v ? static_cast<const T*>(p.v) + token * p.v_stride
                         : static_cast<const T*>(p.k) + token * p.k_stride) + h * p.head_dim;
    // Pair j of the row: elements (lo, hi) = (j, j + half) in the neox layout, else (2j, 2j + 1).
    const bool neox_pairs = kRotary && !is_v && p.is_neox != 0;
    float a[kE4m3MaxPairsPerLane], b[kE4m3MaxPairsPerLane];
    float amax = 0.0f;
#pragma unroll
    for (int u = 0; u < kE4m3MaxPairsPerLane; ++u) {
      const int j = lane + 32 * u;
      a[u] = b[u] = 0.0f;
      if (j >= half) continue;
      const int lo = neox_pairs ? j : 2 * j, hi = neox_pairs ? j + half : 2 * j + 1;
      float x = to_float(src[lo]), y = to_float(src[hi]);
      if (kRotary && !is_v && rotate) {
        const float c = cos[j], s = sin[j];
        const float rx = x * c - y * s, ry = y * c + x * s;
        x = to_float(from_float<T>(rx));  // the rotary op's rounding
        y = to_float(from_float<T>(ry));
      }
      a[u] = x;
      b[u] = y;
      amax = nan_max(nan_max(amax, fabsf(x)), fabsf(y));
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = nan_max(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float scale = e4m3_row_scale(amax);
    const int64_t at = static_cast<int64_t>(slot) * p.num_kv_heads + h;
    if (lane == 0) (is_v ? p.v_scales : p.k_scales)[at] = scale;
    const float inverse = scale == 0.0f ? 0.0f : __frcp_rn(scale);
    uint8_t* codes = static_cast<uint8_t*>(is_v ? p.v_cache : p.k_cache) + at * p.head_dim;
#pragma unroll
    for (int u = 0; u < kE4m3MaxPairsPerLane; ++u) {
      const int j = lane + 32 * u;
      if (j >= half) continue;
      const int lo = neox_pairs ? j : 2 * j, hi = neox_pairs ? j + half : 2 * j + 1;
      // A zero scale (a zero row) gives zero codes, as the CPU's memset.
      codes[lo] = scale == 0.0f ? 0 : f32_to_e4m3(a[u] * inverse);
      codes[hi] = scale == 0.0f ? 0 : f32_to_e4m3(b[u] * inverse);
    }
  }
}

}  // namespace kiln
