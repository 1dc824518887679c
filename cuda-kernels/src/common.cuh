// Shared device helpers: element types, vector access, the sm_80 matrix instructions
// (ldmatrix, mma.sync, cp.async) and the launch checks of the launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "kiln_cuda.h"
#include "status.cuh"

namespace kiln {

// ---- element types ------------------------------------------------------------------------------

template <typename T>
struct DtypeTraits;

template <>
struct DtypeTraits<__half> {
  static constexpr int kId = KILN_CUDA_F16;
  static constexpr const char* kName = "fp16";
};

template <>
struct DtypeTraits<__nv_bfloat16> {
  static constexpr int kId = KILN_CUDA_BF16;
  static constexpr const char* kName = "bf16";
};

template <>
struct DtypeTraits<float> {
  static constexpr int kId = KILN_CUDA_F32;
  static constexpr const char* kName = "fp32";
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Two floats rounded to T and packed into one 32-bit register, lo in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t v);
template <>
__device__ __forceinline__ float2 unpack2<__half>(uint32_t v) {
  return __half22float2(*reinterpret_cast<__half2*>(&v));
}
template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t v) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&v));
}

// Eight 16-bit elements as one 16-byte vector.
template <typename T>
struct Vec8 {
  uint4 raw;
  __device__ __forceinline__ void to_float(float (&f)[8]) const {
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 p = unpack2<T>(w[i]);
      f[2 * i] = p.x;
      f[2 * i + 1] = p.y;
    }
  }
  __device__ __forceinline__ void from_float(const float (&f)[8]) {
    raw.x = pack2<T>(f[0], f[1]);
    raw.y = pack2<T>(f[2], f[3]);
    raw.z = pack2<T>(f[4], f[5]);
    raw.w = pack2<T>(f[6], f[7]);
  }
};

// Streamed data (weights) is read once: no L1 allocation, so that L1 keeps what is reused.
__device__ __forceinline__ uint4 load_streaming(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// ---- reductions ----------------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; every thread gets the result. scratch: >= 32 floats of shared memory.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

// Maximum over the block; every thread gets the result. scratch: >= 32 floats of shared memory.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// ---- programmatic dependent launch (sm_90+) ----------------------------------------------------
// A kernel started with launch_pdl may begin while the kernel before it on the stream is still
// finishing, which hides the launch gap between the short kernels of a decode step. It must call
// pdl_wait() before it reads anything an earlier kernel wrote or writes anything one reads: the
// wait returns once every earlier kernel has completed and its writes are visible. Right after
// the wait it calls pdl_launch_dependents(), letting the next kernel start its own launch. Work
// that touches no such data (streaming weights) may come before the wait. Launched the ordinary
// way, or before sm_90, both calls do nothing.

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// ---- grid-wide hand-off ----------------------------------------------------------------------

// Whether this block is the last of `expected` to arrive at *counter (which is then reset to 0
// for the next call). Every thread gets the answer; the block's global writes before the call are
// visible to the last block's reads after it.
__device__ __forceinline__ bool arrive_last(uint32_t* counter, uint32_t expected, uint32_t* s_flag) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const uint32_t prior = atomicAdd(counter, 1u);
    const bool last = prior == expected - 1;
    if (last) *counter = 0u;
    *s_flag = last ? 1u : 0u;
  }
  __syncthreads();
  const bool last = *s_flag != 0u;
  if (last) __threadfence();
  return last;
}

// ---- sm_80 matrix instructions ---------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; with valid == false the destination is zero-filled and nothing
// is read (src must still be a mapped address).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes));
}

// 4 bytes, zero-filled when !valid (src must still be a valid address).
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a * b for one m16n8k16 tile, fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1);

template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4],
                                                  uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x with the special-function unit (ex2.approx.ftz: 2^-inf = 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a shared tile of rows of kRowChunks
// chunks, XOR-swizzled so that ldmatrix over 8 rows at one chunk hits 8 different bank groups.
template <int kRowChunks>
__device__ __forceinline__ uint32_t swizzled_offset(int row, int chunk) {
  static_assert(kRowChunks >= 8, "swizzle needs rows of at least 8 chunks (64 elements)");
  return static_cast<uint32_t>((row * kRowChunks + (chunk ^ (row & 7))) * 16);
}

}  // namespace kiln

// ---- host-side checks for launchers ------------------------------------------------------------

#define KILN_REQUIRE(cond, code, ...)              \
  do {                                             \
    if (!(cond)) return ::kiln::cuda_fail((code), __VA_ARGS__); \
  } while (0)

#define KILN_CHECK_LAUNCH(name)                                                                 \
  do {                                                                                          \
    cudaError_t kiln_err_ = cudaGetLastError();                                                 \
    if (kiln_err_ != cudaSuccess)                                                               \
      return ::kiln::cuda_fail(KILN_CUDA_ERR_LAUNCH, "%s: %s", (name),                         \
                               cudaGetErrorString(kiln_err_));                                 \
  } while (0)

namespace kiln {

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Workspace parts start on 256-byte boundaries.
inline int64_t align256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

inline const char* dtype_name(int dtype) {
  switch (dtype) {
    case KILN_CUDA_F32: return "f32";
    case KILN_CUDA_F16: return "f16";
    case KILN_CUDA_BF16: return "bf16";
    default: return "unknown";
  }
}

inline int current_sm_count() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    return 1;
  }
  return sms;
}

inline int current_cc_major() {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return major;
}

// Whether kernels are launched with programmatic dependent launch: on sm_90+ devices, unless
// KILN_CUDA_PDL=0 (for comparisons).
inline bool pdl_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("KILN_CUDA_PDL");
    return current_cc_major() >= 9 && !(env != nullptr && env[0] == '0');
  }();
  return enabled;
}

// The most token rows a launch may carry and still start early: decode-sized steps (the graph
// buckets), whose short kernels gain from it. A prefill kernel started early would only hold
// multiprocessors while the long GEMM before it finishes.
constexpr int64_t kPdlMaxRows = 256;

// kernel<<<grid, block, smem, stream>>>(args...), with programmatic dependent launch where enabled
// and the launch carries at most kPdlMaxRows token rows.
template <typename... Params, typename... Args>
cudaError_t launch_pdl(int64_t rows, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                       cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attribute;
  config.numAttrs = pdl_enabled() && rows <= kPdlMaxRows ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace kiln

// Calls BODY with T bound to the element type of dtype (fp32, fp16 or bf16), or fails naming it.
// fp32 activations take the ops' plain element-wise paths (the 16-byte vector paths pack 8
// 16-bit elements).
#define KILN_DISPATCH_ANY(dtype, fn_name, ...)                                             \
  do {                                                                                     \
    if ((dtype) == KILN_CUDA_F32) {                                                        \
      using T = float;                                                                     \
      __VA_ARGS__                                                                          \
    } else {                                                                               \
      KILN_DISPATCH_HALF(dtype, fn_name, __VA_ARGS__);                                     \
    }                                                                                      \
  } while (0)

// Calls BODY with T bound to the element type of a 16-bit dtype, or fails naming the dtype.
#define KILN_DISPATCH_HALF(dtype, fn_name, ...)                                            \
  do {                                                                                     \
    if ((dtype) == KILN_CUDA_BF16) {                                                       \
      using T = __nv_bfloat16;                                                             \
      __VA_ARGS__                                                                          \
    } else if ((dtype) == KILN_CUDA_F16) {                                                 \
      using T = __half;                                                                    \
      __VA_ARGS__                                                                          \
    } else {                                                                               \
      return ::kiln::cuda_fail(KILN_CUDA_ERR_UNSUPPORTED, "%s: dtype %d (%s) is not supported, " \
                               "only f16 and bf16", (fn_name), (dtype), ::kiln::dtype_name(dtype)); \
    }                                                                                      \
  } while (0)
