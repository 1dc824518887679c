// FP8 (e4m3) device code: the activation / weight row quantiser, the dequantiser of the weight-only
// path, and the skinny FP8 product of decode steps on the tensor cores.
//
// The skinny product (gemv_f8_kernel) multiplies a handful of quantised activation rows by e4m3
// weights with mma.sync m16n8k32 (e4m3 x e4m3 -> fp32, sm_89+): a warp owns 16 weight rows and
// all (<= 16) tokens, in tiles of 8, so the weights stream once from memory as 16-byte loads and
// the tokens ride along in the instruction's N dimension. The reduction order inside a chunk of
// K is free, so each lane loads 16 contiguous bytes of its weight row and of its token's row and
// uses them as the k-slots the fragment layout gives it (the same permutation of k on both
// operands: the dot product is unchanged, each e4m3 x e4m3 product is exact in fp32). The warps
// of a block split K and add their partial sums through shared memory.
#pragma once

#include "common.cuh"
#include "e4m3.cuh"

namespace kiln {

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
  if (scale > 0.0f && scale < kSmallestScale) scale = kSmallestScale;  // 1 / scale stays finite
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

constexpr int kGemvF8Rows = 16;       // weight rows of a block (the mma's M)
constexpr int kGemvF8TileTokens = 8;  // tokens of one mma (its N)
// KILN_CUDA_GEMV_F8_MAX_ROWS: two token tiles. Past 16 rows cuBLASLt's FP8 GEMM is as fast or
// faster on the 8B's projections (measured on an H200, docs/performance.md).
constexpr int kGemvF8MaxTokens = 16;
constexpr int kGemvF8Warps = 8;  // warps of a block, each a share of K
constexpr int kGemvF8Chunk = 64;      // K bytes a warp takes per step: two mma k-steps of 32

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

// One chunk of K as this lane holds it: 16 bytes of weight rows g and g + 8 of each weight tile,
// 16 bytes of token g + 8 t of each token tile t (zero past m).
template <int kTiles, int kTokenTiles>
struct GemvF8Chunk {
  uint4 w[kTiles][2];
  uint4 x[kTokenTiles];
};

// The loads of one round (kUnroll chunks a kWarps apart, starting at chunk) into c; chunks past
// the end are left unloaded.
template <int kTiles, int kTokenTiles, int kUnroll, int kWarps>
__device__ __forceinline__ void gemv_f8_load_weights(GemvF8Chunk<kTiles, kTokenTiles> (&c)[kUnroll],
                                                     const uint8_t* const (&w_rows)[kTiles][2], int64_t chunk,
                                                     int64_t chunks) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int64_t at = chunk + u * kWarps;
    if (at < chunks) {
#pragma unroll
      for (int t = 0; t < kTiles; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) c[u].w[t][h] = load_streaming(w_rows[t][h] + at * kGemvF8Chunk);
    }
  }
}

template <int kTiles, int kTokenTiles, int kUnroll, int kWarps>
__device__ __forceinline__ void gemv_f8_load_tokens(GemvF8Chunk<kTiles, kTokenTiles> (&c)[kUnroll],
                                                    const uint8_t* const (&x_rows)[kTokenTiles],
                                                    const bool (&has_token)[kTokenTiles], int64_t chunk,
                                                    int64_t chunks) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int64_t at = chunk + u * kWarps;
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j)
      c[u].x[j] = has_token[j] && at < chunks ? __ldg(reinterpret_cast<const uint4*>(x_rows[j] + at * kGemvF8Chunk))
                                              : make_uint4(0, 0, 0, 0);
  }
}

template <int kTiles, int kTokenTiles, int kUnroll, int kWarps>
__device__ __forceinline__ void gemv_f8_multiply(const GemvF8Chunk<kTiles, kTokenTiles> (&c)[kUnroll],
                                                 float (&acc)[kTiles][kTokenTiles][4], int64_t chunk,
                                                 int64_t chunks) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    if (chunk + u * kWarps >= chunks) break;
#pragma unroll
    for (int t = 0; t < kTiles; ++t)
#pragma unroll
      for (int j = 0; j < kTokenTiles; ++j) {
        // k-step 1 takes bytes 0-7 of each 16, k-step 2 bytes 8-15 (see the file comment).
        const uint4& w0 = c[u].w[t][0];
        const uint4& w1 = c[u].w[t][1];
        mma_e4m3_16832(acc[t][j], w0.x, w1.x, w0.y, w1.y, c[u].x[j].x, c[u].x[j].y);
        mma_e4m3_16832(acc[t][j], w0.z, w1.z, w0.w, w1.w, c[u].x[j].z, c[u].x[j].w);
      }
  }
}

// Grid: ceil(n / 16) blocks of kGemvF8Warps warps; k % 64 == 0; xq, w 16-byte aligned;
// m <= 8 * kTokenTiles.
template <typename TOut, typename TAct, bool kGated, int kTokenTiles>
__global__ void __launch_bounds__(kGemvF8Warps * 32) gemv_f8_kernel(const GemvF8Params p) {
  constexpr int kWarps = kGemvF8Warps;
  constexpr int kTiles = kGated ? 2 : 1;
  constexpr int kAcc = 4 * kTiles * kTokenTiles;
  // Chunks whose loads are in flight together (fewer where each takes more registers).
  // NOTE: double-buffering the rounds (the next round's loads before this one's products) was
  // slower on an H200: twice the registers left one block per SM (qkv at one row: 11.3 against
  // 8.6 us).
  constexpr int kUnroll = kTiles * kTokenTiles <= 2 ? 4 : 2;
  __shared__ float partial[kWarps][kAcc][32];  // each warp's accumulators, for the K reduction
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
  bool has_token[kTokenTiles];
  const uint8_t* x_rows[kTokenTiles];
#pragma unroll
  for (int t = 0; t < kTokenTiles; ++t) {
    const int token = group + kGemvF8TileTokens * t;
    has_token[t] = token < p.m;
    x_rows[t] = p.xq + (has_token[t] ? token : 0) * p.k + 16 * thread_in_group;
  }

  float acc[kTiles][kTokenTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[t][j][i] = 0.0f;

  // A round of loads, then its products. The weights are no earlier kernel's output, so the
  // first round's weight loads are issued before the wait.
  const int64_t chunks = p.k / kGemvF8Chunk;
  bool waited = false;
  for (int64_t chunk = warp; chunk < chunks; chunk += static_cast<int64_t>(kWarps) * kUnroll) {
    GemvF8Chunk<kTiles, kTokenTiles> c[kUnroll];
    gemv_f8_load_weights<kTiles, kTokenTiles, kUnroll, kWarps>(c, w_rows, chunk, chunks);
    if (!waited) {
      pdl_wait();
      pdl_launch_dependents();
      waited = true;
    }
    gemv_f8_load_tokens<kTiles, kTokenTiles, kUnroll, kWarps>(c, x_rows, has_token, chunk, chunks);
    gemv_f8_multiply<kTiles, kTokenTiles, kUnroll, kWarps>(c, acc, chunk, chunks);
  }
  if (!waited) {
    pdl_wait();
    pdl_launch_dependents();
  }

#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) partial[warp][(t * kTokenTiles + j) * 4 + i][lane] = acc[t][j][i];
  __syncthreads();
  // Each thread sums some of the block's accumulators over the warps and writes them out.
  for (int slot = threadIdx.x; slot < (kAcc / kTiles) * 32; slot += kWarps * 32) {
    const int j = slot / (4 * 32), i = (slot / 32) % 4, owner = slot % 32;  // token tile, accumulator, lane
    const int owner_group = owner >> 2, owner_thread = owner & 3;
    // Accumulator i of a tile pair: weight row group + 8 * (i / 2), token 2 * thread + i % 2 (+ 8 j).
    const int64_t row = row0 + owner_group + 8 * (i / 2);
    const int token = kGemvF8TileTokens * j + 2 * owner_thread + (i % 2);
    if (row >= p.n || token >= p.m) continue;
    float sums[kTiles];
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) sum += partial[w][(t * kTokenTiles + j) * 4 + i][owner];
      sums[t] = sum;
    }
    const float x_scale = p.x_scales[token];
    float value;
    if constexpr (kGated) {
      // gate and up rounded as a separate gate_up product would store them, then SiLU-and-mul.
      const float gate = to_float(from_float<TAct>(sums[0] * (x_scale * p.w_scales[row])));
      const float up = to_float(from_float<TAct>(sums[kTiles - 1] * (x_scale * p.w_scales[row + p.n])));
      value = gate / (1.0f + __expf(-gate)) * up;
    } else {
      value = sums[0] * (x_scale * p.w_scales[row]);
      if (p.bias != nullptr) value += to_float(static_cast<const TAct*>(p.bias)[row]);
    }
    static_cast<TOut*>(p.out)[token * p.out_stride + row] = from_float<TOut>(value);
  }
}

}  // namespace kiln
