// Row-wise layer ops: RMSNorm (+ residual), per-head RMSNorm, rotary, SiLU-and-mul, embedding,
// bias add and row gather. All memory-bound: 16-byte accesses where sizes and alignment allow,
// fp32 arithmetic, one rounding per stored value.
#pragma once

#include "common.cuh"

namespace kiln {

// ---- RMSNorm ---------------------------------------------------------------------------------

struct RmsNormParams {
  void* out;             // [rows, dim], row stride out_stride
  const void* x;         // [rows, dim], row stride x_stride
  void* residual;        // [rows, dim] or nullptr
  const void* weight;    // [dim]
  int64_t out_stride, x_stride, residual_stride;
  int64_t rows, dim;
  float eps;
};

// One block per row, kVecs 8-element vectors per thread held in registers: one read of x (and
// residual), one write of residual and out. Needs dim % 8 == 0 and 16-byte aligned rows.
template <typename T, int kVecs>
__global__ void rms_norm_vec_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  pdl_wait();
  pdl_launch_dependents();
  const int64_t row = blockIdx.x;
  const int64_t nvec = p.dim / 8;
  const T* x = static_cast<const T*>(p.x) + row * p.x_stride;
  T* res = p.residual ? static_cast<T*>(p.residual) + row * p.residual_stride : nullptr;
  Vec8<T> v[kVecs];
  float sum_sq = 0.0f;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t idx = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (idx < nvec) {
      v[i].raw = reinterpret_cast<const uint4*>(x)[idx];
      if (res != nullptr) {
        Vec8<T> r;
        r.raw = reinterpret_cast<const uint4*>(res)[idx];
        float a[8], b[8];
        v[i].to_float(a);
        r.to_float(b);
#pragma unroll
        for (int j = 0; j < 8; ++j) a[j] += b[j];
        v[i].from_float(a);  // NOTE: the norm reads the stored (rounded) residual
        reinterpret_cast<uint4*>(res)[idx] = v[i].raw;
      }
      float a[8];
      v[i].to_float(a);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum_sq += a[j] * a[j];
    }
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq, scratch) / static_cast<float>(p.dim) + p.eps);
  T* out = static_cast<T*>(p.out) + row * p.out_stride;
  const uint4* w = static_cast<const uint4*>(p.weight);
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t idx = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (idx < nvec) {
      Vec8<T> wv;
      wv.raw = w[idx];
      float a[8], b[8];
      v[i].to_float(a);
      wv.to_float(b);
#pragma unroll
      for (int j = 0; j < 8; ++j) a[j] = a[j] * inv_rms * b[j];
      v[i].from_float(a);
      reinterpret_cast<uint4*>(out)[idx] = v[i].raw;
    }
  }
}

// Any dim and alignment: two passes over the row (the second mostly from L1/L2). Each element
// is handled by the same thread in both passes, so the in-place residual needs no barrier.
template <typename T>
__global__ void rms_norm_scalar_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  pdl_wait();
  pdl_launch_dependents();
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.x_stride;
  T* res = p.residual ? static_cast<T*>(p.residual) + row * p.residual_stride : nullptr;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) {
    float a = to_float(x[i]);
    if (res != nullptr) {
      const T s = from_float<T>(a + to_float(res[i]));
      res[i] = s;
      a = to_float(s);
    }
    sum_sq += a * a;
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq, scratch) / static_cast<float>(p.dim) + p.eps);
  T* out = static_cast<T*>(p.out) + row * p.out_stride;
  const T* w = static_cast<const T*>(p.weight);
  const T* src = res != nullptr ? res : x;
  for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) {
    out[i] = from_float<T>(to_float(src[i]) * inv_rms * to_float(w[i]));
  }
}

// ---- per-head RMSNorm (q/k norm) ---------------------------------------------------------------

struct HeadRmsNormParams {
  void* x;  // [num_tokens, num_heads, head_dim], token stride token_stride
  const void* weight;  // [head_dim]
  int64_t token_stride, num_tokens, num_heads, head_dim;
  float eps;
};

// One warp per (token, head) row; each lane keeps up to kMaxPerLane elements in registers.
template <typename T>
__global__ void head_rms_norm_kernel(HeadRmsNormParams p) {
  constexpr int kMaxPerLane = 16;  // head_dim <= 512
  pdl_wait();
  pdl_launch_dependents();
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= p.num_tokens * p.num_heads) return;
  T* x = static_cast<T*>(p.x) + (row / p.num_heads) * p.token_stride + (row % p.num_heads) * p.head_dim;
  const T* w = static_cast<const T*>(p.weight);
  float v[kMaxPerLane];
  float sum_sq = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + 32 * i;
    v[i] = d < p.head_dim ? to_float(x[d]) : 0.0f;
    sum_sq += v[i] * v[i];
  }
  const float inv_rms = rsqrtf(warp_sum(sum_sq) / static_cast<float>(p.head_dim) + p.eps);
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < p.head_dim) x[d] = from_float<T>(v[i] * inv_rms * to_float(w[d]));
  }
}

// ---- rotary ------------------------------------------------------------------------------------

// Rotates four pairs of one head: neox pairs (i+j, i+j+half), interleaved pairs (2(i+j), 2(i+j)+1)
// for j < 4, with i = 4 * group. in/out may alias.
template <typename T>
__device__ __forceinline__ void rotate_group(const T* in, T* out, int group, int half,
                                             const float* cos, const float* sin, bool is_neox) {
  const int i = group * 4;
  const float4 c = *reinterpret_cast<const float4*>(cos + i);
  const float4 s = *reinterpret_cast<const float4*>(sin + i);
  const float cs[4] = {c.x, c.y, c.z, c.w};
  const float sn[4] = {s.x, s.y, s.z, s.w};
  if (is_neox) {
    uint2 lo = *reinterpret_cast<const uint2*>(in + i);
    uint2 hi = *reinterpret_cast<const uint2*>(in + i + half);
    const float2 a01 = unpack2<T>(lo.x), a23 = unpack2<T>(lo.y);
    const float2 b01 = unpack2<T>(hi.x), b23 = unpack2<T>(hi.y);
    const float a[4] = {a01.x, a01.y, a23.x, a23.y};
    const float b[4] = {b01.x, b01.y, b23.x, b23.y};
    float ra[4], rb[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      ra[j] = a[j] * cs[j] - b[j] * sn[j];
      rb[j] = b[j] * cs[j] + a[j] * sn[j];
    }
    lo.x = pack2<T>(ra[0], ra[1]);
    lo.y = pack2<T>(ra[2], ra[3]);
    hi.x = pack2<T>(rb[0], rb[1]);
    hi.y = pack2<T>(rb[2], rb[3]);
    *reinterpret_cast<uint2*>(out + i) = lo;
    *reinterpret_cast<uint2*>(out + i + half) = hi;
  } else {
    Vec8<T> v;
    v.raw = *reinterpret_cast<const uint4*>(in + 2 * i);
    float f[8];
    v.to_float(f);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float a = f[2 * j], b = f[2 * j + 1];
      f[2 * j] = a * cs[j] - b * sn[j];
      f[2 * j + 1] = b * cs[j] + a * sn[j];
    }
    v.from_float(f);
    *reinterpret_cast<uint4*>(out + 2 * i) = v.raw;
  }
}

// fp32: the same four pairs, element by element.
template <>
__device__ __forceinline__ void rotate_group<float>(const float* in, float* out, int group, int half,
                                                    const float* cos, const float* sin, bool is_neox) {
  const int i = group * 4;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int lo = is_neox ? i + j : 2 * (i + j);
    const int hi = is_neox ? i + j + half : 2 * (i + j) + 1;
    const float a = in[lo], b = in[hi];
    out[lo] = a * cos[i + j] - b * sin[i + j];
    out[hi] = b * cos[i + j] + a * sin[i + j];
  }
}

// Copies n (4 or 8) elements, 16-byte aligned for 8 16-bit elements, as whole vectors.
template <int kCount, typename T>
__device__ __forceinline__ void copy_elements(T* dst, const T* src) {
  constexpr int kVectors = kCount * static_cast<int>(sizeof(T)) / 16;
  if constexpr (kVectors >= 1) {
#pragma unroll
    for (int v = 0; v < kVectors; ++v) reinterpret_cast<uint4*>(dst)[v] = reinterpret_cast<const uint4*>(src)[v];
  } else {  // four 16-bit elements: 8 bytes
    *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(src);
  }
}

struct RotaryParams {
  void* q;                // [num_tokens, num_q_heads, head_dim] or nullptr
  void* k;                // [num_tokens, num_kv_heads, head_dim] or nullptr
  int64_t q_stride, k_stride, num_q_heads, num_kv_heads, head_dim, num_tokens, max_position;
  const int32_t* positions;  // [num_tokens]
  const float* cos_sin;      // [max_position, head_dim]
  int is_neox;
};

// One block per token; a thread rotates four pairs of one head.
template <typename T>
__global__ void rotary_kernel(RotaryParams p) {
  const int64_t token = blockIdx.x;
  const int32_t pos = p.positions[token];
  if (pos < 0 || pos >= p.max_position) return;
  const int half = static_cast<int>(p.head_dim / 2);
  const int groups = half / 4;
  const float* cos = p.cos_sin + static_cast<int64_t>(pos) * p.head_dim;
  const float* sin = cos + half;
  const int64_t q_items = p.q ? p.num_q_heads * groups : 0;
  const int64_t k_items = p.k ? p.num_kv_heads * groups : 0;
  for (int64_t item = threadIdx.x; item < q_items + k_items; item += blockDim.x) {
    T* head;
    int group;
    if (item < q_items) {
      head = static_cast<T*>(p.q) + token * p.q_stride + (item / groups) * p.head_dim;
      group = static_cast<int>(item % groups);
    } else {
      const int64_t kitem = item - q_items;
      head = static_cast<T*>(p.k) + token * p.k_stride + (kitem / groups) * p.head_dim;
      group = static_cast<int>(kitem % groups);
    }
    rotate_group<T>(head, head, group, half, cos, sin, p.is_neox != 0);
  }
}

// ---- SiLU-and-mul, embedding, bias, gather -----------------------------------------------------

__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

template <typename T>
__global__ void silu_and_mul_vec_kernel(T* out, const T* gate_up, int64_t num_tokens, int64_t inter) {
  const int64_t vecs_per_row = inter / 8;
  const int64_t total = num_tokens * vecs_per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / vecs_per_row, c = i % vecs_per_row;
    const uint4* row = reinterpret_cast<const uint4*>(gate_up + t * 2 * inter);
    Vec8<T> g, u;
    g.raw = row[c];
    u.raw = row[c + vecs_per_row];
    float a[8], b[8];
    g.to_float(a);
    u.to_float(b);
#pragma unroll
    for (int j = 0; j < 8; ++j) a[j] = silu(a[j]) * b[j];
    g.from_float(a);
    reinterpret_cast<uint4*>(out + t * inter)[c] = g.raw;
  }
}

template <typename T>
__global__ void silu_and_mul_scalar_kernel(T* out, const T* gate_up, int64_t num_tokens, int64_t inter) {
  const int64_t total = num_tokens * inter;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / inter, c = i % inter;
    const T* row = gate_up + t * 2 * inter;
    out[i] = from_float<T>(silu(to_float(row[c])) * to_float(row[c + inter]));
  }
}

// out[i, :] = in[index[i], :], a zero row for an index outside [0, num_in). One block per row;
// kVec selects 16-byte copies (dim % 8 == 0, aligned rows).
template <typename T, bool kVec>
__global__ void gather_rows_kernel(T* out, int64_t out_stride, const T* in, int64_t in_stride,
                                   const int32_t* index, int64_t num_in, int64_t dim) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t r = blockIdx.x;
  const int32_t src_row = index[r];
  const bool valid = src_row >= 0 && src_row < num_in;
  T* dst = out + r * out_stride;
  const T* src = in + (valid ? static_cast<int64_t>(src_row) : 0) * in_stride;
  if (kVec) {
    for (int64_t c = threadIdx.x; c < dim / 8; c += blockDim.x) {
      reinterpret_cast<uint4*>(dst)[c] =
          valid ? reinterpret_cast<const uint4*>(src)[c] : make_uint4(0, 0, 0, 0);
    }
  } else {
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
      dst[c] = valid ? src[c] : from_float<T>(0.0f);
    }
  }
}

template <typename T>
__global__ void add_bias_kernel(T* x, int64_t x_stride, const T* bias, int64_t rows, int64_t dim) {
  const int64_t total = rows * dim;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / dim, c = i % dim;
    T* e = x + r * x_stride + c;
    *e = from_float<T>(to_float(*e) + to_float(bias[c]));
  }
}

template <typename T>
__global__ void add_bias_vec_kernel(T* x, int64_t x_stride, const T* bias, int64_t rows, int64_t dim) {
  const int64_t vecs = dim / 8;
  const int64_t total = rows * vecs;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / vecs, c = i % vecs;
    uint4* e = reinterpret_cast<uint4*>(x + r * x_stride) + c;
    Vec8<T> a, b;
    a.raw = *e;
    b.raw = reinterpret_cast<const uint4*>(bias)[c];
    float fa[8], fb[8];
    a.to_float(fa);
    b.to_float(fb);
#pragma unroll
    for (int j = 0; j < 8; ++j) fa[j] += fb[j];
    a.from_float(fa);
    *e = a.raw;
  }
}

}  // namespace kiln
