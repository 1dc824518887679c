// Launcher of the skinny matrix products (device code in gemv.cuh).
#include "gemv.cuh"

namespace kiln {
namespace {

template <typename T, typename TOut, bool kGated>
int launch_gemv(const GemvParams& p, int64_t m, cudaStream_t stream) {
  const int64_t blocks = (p.n + kGemvThreads / 32 - 1) / (kGemvThreads / 32);
  const dim3 grid(static_cast<unsigned>(blocks)), block(kGemvThreads);
  switch (m) {
    case 1: launch_pdl(m, gemv_kernel<T, TOut, 1, kGated>, grid, block, 0, stream, p); break;
    case 2: launch_pdl(m, gemv_kernel<T, TOut, 2, kGated>, grid, block, 0, stream, p); break;
    case 3: launch_pdl(m, gemv_kernel<T, TOut, 3, kGated>, grid, block, 0, stream, p); break;
    default: launch_pdl(m, gemv_kernel<T, TOut, 4, kGated>, grid, block, 0, stream, p); break;
  }
  KILN_CHECK_LAUNCH("kiln_cuda_gemv");
  return KILN_CUDA_OK;
}

// NOTE: fp32 output is for the LM head, which is never gated: that variant is not built.
template <typename T>
int dispatch(const GemvParams& p, int64_t m, bool gated, int out_dtype, cudaStream_t stream) {
  if (gated) return launch_gemv<T, T, true>(p, m, stream);
  return out_dtype == KILN_CUDA_F32 ? launch_gemv<T, float, false>(p, m, stream) : launch_gemv<T, T, false>(p, m, stream);
}

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int kiln_cuda_gemv(void* out, int64_t out_stride, int out_dtype, const void* x, int64_t x_stride,
                              int gated, const void* w, const void* bias, int64_t m, int64_t n, int64_t k, int dtype,
                              void* stream) {
  const char* name = "kiln_cuda_gemv";
  KILN_REQUIRE(out && x && w, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null pointer", name);
  KILN_REQUIRE(m >= 0 && m <= kGemvMaxRows, KILN_CUDA_ERR_UNSUPPORTED, "%s: %lld rows, at most %d", name,
               (long long)m, kGemvMaxRows);
  KILN_REQUIRE(n > 0 && n <= 2147483647ll * (kGemvThreads / 32) && k > 0 && k % 8 == 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: bad sizes n=%lld k=%lld (k must be a positive multiple of 8)", name, (long long)n, (long long)k);
  KILN_REQUIRE(out_stride >= n && x_stride >= k && x_stride % 8 == 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: out stride %lld must be >= n, x stride %lld >= the row and a multiple of 8", name,
               (long long)out_stride, (long long)x_stride);
  KILN_REQUIRE(aligned16(x) && aligned16(w), KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: x and w must be 16-byte aligned",
               name);
  KILN_REQUIRE(out_dtype == dtype || out_dtype == KILN_CUDA_F32, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: out dtype %s must be the input's or f32", name, dtype_name(out_dtype));
  KILN_REQUIRE(bias == nullptr || !gated, KILN_CUDA_ERR_UNSUPPORTED, "%s: the gated form takes no bias", name);
  KILN_REQUIRE((bias == nullptr && !gated) || out_dtype == dtype, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: a bias or the gated form needs %s output", name, dtype_name(dtype));
  if (m == 0) return KILN_CUDA_OK;
  const GemvParams p{out, x, w, bias, out_stride, x_stride, n, k};
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  KILN_DISPATCH_HALF(dtype, name, return dispatch<T>(p, m, gated != 0, out_dtype, s););
}
