// FP8 (e4m3) device code: the activation / weight row quantiser, the dequantiser of the weight-only
// path, and the skinny FP8 product of decode steps on the tensor cores.
//
// The skinny product (gemv_f8_kernel) multiplies a handful of quantised activation rows by e4m3
// weights with mma.sync m16n8k32 (e4m3 x e4m3 -> fp32, sm_89+): a warp owns 16 weight rows and
// all (<= 8) tokens, so the weights stream once from memory as 16-byte loads and the tokens ride
// along in the instruction's N dimension at no extra cost. The reduction order inside a chunk of
// K is free, so each lane loads 16 contiguous bytes of its weight row and of its token's row and
// uses them as the k-slots the fragment layout gives it (the same permutation of k on both
// operands: the dot product is unchanged, each e4m3 x e4m3 product is exact in fp32). The warps
// of a block split K and add their partial sums through shared memory.
#pragma once

#include <cuda_fp8.h>

#include "common.cuh"

namespace kiln {

constexpr float kE4m3Max = 448.0f;

// ---- conversions ---------------------------------------------------------------------------------

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

__device__ __forceinline__ float block_nan_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// ---- row quantisation ------------------------------------------------------------------------------

constexpr int kQuantizeThreads = 256;

struct QuantizeParams {
  uint8_t* xq;          // [m, k] e4m3, row stride k
  float* scales;        // [m]
  const void* x;        // [m, k] of the input type, row stride x_stride
  int64_t x_stride, k;
  int mode;             // KILN_CUDA_FP8_INPUT_*
  float static_scale, scale_ub;
};

// Grid: one block of kQuantizeThreads per row.
template <typename T>
__global__ void __launch_bounds__(kQuantizeThreads) quantize_e4m3_kernel(const QuantizeParams p) {
  __shared__ float scratch[32];
  const T* x = static_cast<const T*>(p.x) + static_cast<int64_t>(blockIdx.x) * p.x_stride;  // [k]
  uint8_t* xq = p.xq + static_cast<int64_t>(blockIdx.x) * p.k;                              // [k]
  pdl_wait();
  pdl_launch_dependents();
  float scale = p.static_scale;
  if (p.mode == KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN) {
    float amax = 0.0f;
    for (int64_t c = threadIdx.x; c < p.k; c += kQuantizeThreads) amax = nan_max(amax, fabsf(to_float(x[c])));
    amax = block_nan_max(amax, scratch);
    if (p.scale_ub > 0.0f && amax > p.scale_ub) amax = p.scale_ub;
    scale = __fdiv_rn(amax, kE4m3Max);
  }
  if (threadIdx.x == 0) p.scales[blockIdx.x] = scale;
  if (scale == 0.0f) {
    for (int64_t c = threadIdx.x; c < p.k; c += kQuantizeThreads) xq[c] = 0;
    return;
  }
  const float inverse = __frcp_rn(scale);
  for (int64_t c = threadIdx.x; c < p.k; c += kQuantizeThreads) xq[c] = f32_to_e4m3(to_float(x[c]) * inverse);
}

// out[r, c] = T(e4m3_value(w[r, c]) * scales[r]); grid-stride over rows * cols elements.
template <typename T>
__global__ void dequantize_e4m3_kernel(T* out, const uint8_t* w, const float* scales, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = from_float<T>(e4m3_to_f32(w[i]) * scales[i / cols]);
  }
}

// ---- skinny FP8 product ----------------------------------------------------------------------------

constexpr int kGemvF8Warps = 8;      // warps of a block, each a share of K
constexpr int kGemvF8Rows = 16;      // weight rows of a block (the mma's M)
constexpr int kGemvF8MaxTokens = 8;  // KILN_CUDA_GEMV_F8_MAX_ROWS (the mma's N)
constexpr int kGemvF8Chunk = 64;     // K bytes a warp takes per step: two mma k-steps of 32
constexpr int kGemvF8Unroll = 4;     // chunks whose loads are in flight together

struct GemvF8Params {
  void* out;              // [m, n] of the output type, row stride out_stride
  const uint8_t* xq;      // [m, k] e4m3, row stride k
  const float* x_scales;  // [m]
  const uint8_t* w;       // [n, k] e4m3 ([2n, k] gated: the gate rows, then the up rows)
  const float* w_scales;  // [n] ([2n] gated)
  const void* bias;       // [n] of the activation type, or nullptr
  int64_t out_stride, m, n, k;
};

// D[16 x 8] += A[16 x 32] * B[32 x 8], e4m3 in, fp32 accumulators (sm_89+).
__device__ __forceinline__ void mma_e4m3_16832(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // the launcher refuses devices before sm_89
#endif
}

// A chunk's weight bytes of rows g and g + 8 of each tile: 16 bytes each, at this lane's k offset.
template <int kTiles>
struct GemvF8Chunk {
  uint4 w[kTiles][2];  // [tile][row g, row g + 8]
  uint4 x;             // the token's 16 bytes (zero for a lane whose token is past m)
};

// Grid: ceil(n / 16) blocks of kGemvF8Warps warps; k % 64 == 0; xq, w 16-byte aligned.
template <typename TOut, typename TAct, bool kGated>
__global__ void __launch_bounds__(kGemvF8Warps * 32) gemv_f8_kernel(const GemvF8Params p) {
  constexpr int kTiles = kGated ? 2 : 1;
  __shared__ float partial[kGemvF8Warps][32][4 * kTiles];  // each warp's accumulators, for the K reduction
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = lane >> 2, thread_in_group = lane & 3;  // the fragments' groupID / threadID_in_group
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kGemvF8Rows;

  // This lane's weight rows (one pair per tile; rows past n read row n - 1 and are not written).
  const uint8_t* w_rows[kTiles][2];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = min(row0 + group + 8 * h, p.n - 1) + t * p.n;
      w_rows[t][h] = p.w + row * p.k + 16 * thread_in_group;
    }
  const bool has_token = group < p.m;
  const uint8_t* x_row = p.xq + (has_token ? group : 0) * p.k + 16 * thread_in_group;

  float acc[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.0f;

  const int64_t chunks = p.k / kGemvF8Chunk;
  // The weights are no earlier kernel's output: the first loads may start before the wait.
  int64_t chunk = warp;
  bool waited = false;
  for (; chunk < chunks; chunk += kGemvF8Warps * kGemvF8Unroll) {
    GemvF8Chunk<kTiles> c[kGemvF8Unroll];
#pragma unroll
    for (int u = 0; u < kGemvF8Unroll; ++u) {
      const int64_t at = chunk + u * kGemvF8Warps;
      if (at < chunks) {
#pragma unroll
        for (int t = 0; t < kTiles; ++t)
#pragma unroll
          for (int h = 0; h < 2; ++h) c[u].w[t][h] = load_streaming(w_rows[t][h] + at * kGemvF8Chunk);
      }
    }
    if (!waited) {
      pdl_wait();
      pdl_launch_dependents();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < kGemvF8Unroll; ++u) {
      const int64_t at = chunk + u * kGemvF8Warps;
      c[u].x = has_token && at < chunks ? __ldg(reinterpret_cast<const uint4*>(x_row + at * kGemvF8Chunk))
                                        : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kGemvF8Unroll; ++u) {
      if (chunk + u * kGemvF8Warps >= chunks) break;
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        // k-step 1 takes bytes 0-7 of each 16, k-step 2 bytes 8-15 (see the file comment).
        mma_e4m3_16832(acc[t], c[u].w[t][0].x, c[u].w[t][1].x, c[u].w[t][0].y, c[u].w[t][1].y, c[u].x.x, c[u].x.y);
        mma_e4m3_16832(acc[t], c[u].w[t][0].z, c[u].w[t][1].z, c[u].w[t][0].w, c[u].w[t][1].w, c[u].x.z, c[u].x.w);
      }
    }
  }
  if (!waited) {
    pdl_wait();
    pdl_launch_dependents();
  }

#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) partial[warp][lane][4 * t + i] = acc[t][i];
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kGemvF8Warps; ++w) sum += partial[w][lane][4 * t + i];
      acc[t][i] = sum;
    }
  // Accumulator i of a tile: weight row group + 8 * (i / 2), token 2 * thread_in_group + i % 2.
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = row0 + group + 8 * (i / 2);
    const int token = 2 * thread_in_group + (i % 2);
    if (row >= p.n || token >= p.m) continue;
    const float x_scale = p.x_scales[token];
    float value;
    if constexpr (kGated) {
      // gate and up rounded as a separate gate_up product would store them, then SiLU-and-mul.
      const float gate = to_float(from_float<TAct>(acc[0][i] * (x_scale * p.w_scales[row])));
      const float up = to_float(from_float<TAct>(acc[1][i] * (x_scale * p.w_scales[row + p.n])));
      value = gate / (1.0f + __expf(-gate)) * up;
    } else {
      value = acc[0][i] * (x_scale * p.w_scales[row]);
      if (p.bias != nullptr) value += to_float(static_cast<const TAct*>(p.bias)[row]);
    }
    static_cast<TOut*>(p.out)[token * p.out_stride + row] = from_float<TOut>(value);
  }
}

}  // namespace kiln
