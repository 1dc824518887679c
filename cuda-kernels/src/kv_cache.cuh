// KV-cache write through the slot mapping, optionally fused with rotary: q is rotated in place,
// k is rotated on its way into the cache, v is copied. One block per token.
#pragma once

#include "layer_ops.cuh"

namespace kiln {

struct KvWriteParams {
  void* q;                 // [num_tokens, num_q_heads, head_dim] or nullptr (rotary only)
  const void* k;           // [num_tokens, num_kv_heads, head_dim], token stride k_stride
  const void* v;           // [num_tokens, num_kv_heads, head_dim], token stride v_stride
  void* k_cache;           // [num_slots, num_kv_heads, head_dim]
  void* v_cache;           // [num_slots, num_kv_heads, head_dim]
  const int32_t* slot_mapping;  // [num_tokens]
  const int32_t* positions;     // [num_tokens] (rotary only)
  const float* cos_sin;         // [max_position, head_dim] (rotary only)
  int64_t q_stride, k_stride, v_stride;
  int64_t num_q_heads, num_kv_heads, head_dim, num_slots, max_position;
  int is_neox;
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

}  // namespace kiln
