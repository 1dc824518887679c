// Launchers of the FP8 ops (device code in fp8.cuh).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>

#include "fp8.cuh"
#include "fp8_narrow.cuh"

namespace kiln {
namespace {

bool device_supports_fp8() {
  // NOTE: 9.0 and not Ada's 8.9: the library is built for sm_80 and sm_90a, and an Ada GPU runs
  // the sm_80 build, where the FP8 mma instruction does not exist. (0 where the query fails.)
  return current_cc_major() >= 9;
}

template <typename TOut, typename TAct, bool kGated>
int launch_gemv_f8(const GemvF8Params& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((p.n + kGemvF8Rows - 1) / kGemvF8Rows)), block(kGemvF8Warps * 32);
  if (p.m <= kGemvF8TileTokens) launch_pdl(p.m, gemv_f8_kernel<TOut, TAct, kGated, 1>, grid, block, 0, stream, p);
  else launch_pdl(p.m, gemv_f8_kernel<TOut, TAct, kGated, 2>, grid, block, 0, stream, p);
  KILN_CHECK_LAUNCH("kiln_cuda_gemv_f8");
  return KILN_CUDA_OK;
}

// NOTE: the gated form writes activations only (kiln_cuda_gemv_f8 refuses it with f32 output
// of 16-bit activations), so that variant is not built.
template <typename TOut, typename TAct>
int dispatch_gemv_f8(const GemvF8Params& p, bool gated, cudaStream_t stream) {
  if constexpr (std::is_same_v<TOut, TAct>) {
    if (gated) return launch_gemv_f8<TOut, TAct, true>(p, stream);
  }
  return launch_gemv_f8<TOut, TAct, false>(p, stream);
}

// The arguments both FP8 products (skinny and narrow) take, checked alike: up to max_rows rows, K a
// multiple of k_multiple.
int check_f8_product(const char* name, void* out, int64_t out_stride, int out_dtype, const uint8_t* xq,
                     const float* x_scales, int gated, const uint8_t* w, const float* w_scales, const void* bias,
                     int64_t m, int64_t n, int64_t k, int dtype, int max_rows, int k_multiple) {
  KILN_REQUIRE(out && xq && x_scales && w && w_scales, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null pointer", name);
  KILN_REQUIRE(m >= 0 && m <= max_rows, KILN_CUDA_ERR_UNSUPPORTED, "%s: %lld rows, at most %d", name,
               (long long)m, max_rows);
  KILN_REQUIRE(n > 0 && n <= 2147483647ll && k > 0 && k % k_multiple == 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: bad sizes n=%lld k=%lld (k must be a positive multiple of %d)", name, (long long)n, (long long)k,
               k_multiple);
  KILN_REQUIRE(out_stride >= n, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: out stride %lld must be >= n", name,
               (long long)out_stride);
  KILN_REQUIRE(aligned16(xq) && aligned16(w), KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: xq and w must be 16-byte aligned",
               name);
  KILN_REQUIRE(out_dtype == dtype || out_dtype == KILN_CUDA_F32, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: out dtype %s must be the activations' or f32", name, dtype_name(out_dtype));
  KILN_REQUIRE(bias == nullptr || !gated, KILN_CUDA_ERR_UNSUPPORTED, "%s: the gated form takes no bias", name);
  KILN_REQUIRE((bias == nullptr && !gated) || out_dtype == dtype, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: a bias or the gated form needs %s output", name, dtype_name(dtype));
  return KILN_CUDA_OK;
}

// ---- narrow product ----------------------------------------------------------------------------

// NOTE: the block sizes (96 KB of shared memory at most, 128 registers a thread) are made for two
// blocks a multiprocessor; the split plan counts on that.
constexpr int kNarrowF8BlocksPerSm = 2;

struct NarrowF8Plan {
  int64_t strips;
  int splits, k_tiles_per_split;
  int tokens;  // the token tile: 32, 64 or 128
  int64_t counter_bytes, partial_bytes;
};

// The split of K: none where the strips fill the GPU's block slots by half or more, or where the
// token tile is past 32 (on an H200 a split then cost more than the idle multiprocessors: o of the
// 8B at 64 tokens 17 us unsplit, 20 split in two, 49 in eight); else as many splits as fill the
// slots, each at least 4 stages of K (the pipeline's depth), at most 4.
NarrowF8Plan plan_narrow_f8(int64_t m, int64_t n, int64_t k, bool gated) {
  NarrowF8Plan plan{};
  plan.tokens = m <= 32 ? 32 : m <= 64 ? 64 : 128;
  plan.strips = gated ? (n + 63) / 64 : (n + kNarrowF8StripRows - 1) / kNarrowF8StripRows;
  const int64_t k_tiles = k / kNarrowF8KTile;
  const int64_t slots = static_cast<int64_t>(current_sm_count()) * kNarrowF8BlocksPerSm;
  int64_t splits = 1;
  if (2 * plan.strips < slots && plan.tokens <= 32)
    splits = std::min<int64_t>({slots / plan.strips, k_tiles / 4, kNarrowF8MaxSplits});
  // KILN_CUDA_F8_NARROW_MAX_SPLITS caps the split (for comparisons; 1 turns it off).
  if (const char* cap = std::getenv("KILN_CUDA_F8_NARROW_MAX_SPLITS")) splits = std::min<int64_t>(splits, std::atoi(cap));
  splits = std::max<int64_t>(splits, 1);
  const int64_t per = (k_tiles + splits - 1) / splits;
  plan.k_tiles_per_split = static_cast<int>(per);
  plan.splits = static_cast<int>((k_tiles + per - 1) / per);  // no split left empty
  if (plan.splits > 1) {
    // NOTE: one counter region of a fixed size for every product on this device (a split product
    // has fewer strips than there are multiprocessors, 2 strips < slots): calls of other shapes
    // share the workspace, and partial sums placed after a region sized per call would overwrite
    // another shape's counters.
    plan.counter_bytes = align256(slots / kNarrowF8BlocksPerSm * 4);
    plan.partial_bytes = align256(plan.strips * plan.splits * kNarrowF8Threads * (plan.tokens / 2) * 4);
  }
  return plan;
}

template <typename TOut, typename TAct, bool kGated, int kTokens>
int launch_gemm_f8_narrow(const NarrowF8Params& p, int64_t strips, cudaStream_t stream) {
  constexpr int smem = NarrowF8Config<kTokens>::kSmemBytes;
  auto kernel = gemm_f8_narrow_kernel<TOut, TAct, kGated, kTokens>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  const dim3 grid(static_cast<unsigned>(strips), static_cast<unsigned>(p.splits));
  launch_pdl(p.m, kernel, grid, dim3(kNarrowF8Threads), smem, stream, p);
  KILN_CHECK_LAUNCH("kiln_cuda_gemm_f8_narrow");
  return KILN_CUDA_OK;
}

template <typename TOut, typename TAct, bool kGated>
int dispatch_narrow_tokens(const NarrowF8Params& p, int tokens, int64_t strips, cudaStream_t stream) {
  switch (tokens) {
    case 32: return launch_gemm_f8_narrow<TOut, TAct, kGated, 32>(p, strips, stream);
    case 64: return launch_gemm_f8_narrow<TOut, TAct, kGated, 64>(p, strips, stream);
    default: return launch_gemm_f8_narrow<TOut, TAct, kGated, 128>(p, strips, stream);
  }
}

// NOTE: as the skinny product's, the gated form with f32 output of 16-bit activations is not built.
template <typename TOut, typename TAct>
int dispatch_narrow(const NarrowF8Params& p, bool gated, int tokens, int64_t strips, cudaStream_t stream) {
  if constexpr (std::is_same_v<TOut, TAct>) {
    if (gated) return dispatch_narrow_tokens<TOut, TAct, true>(p, tokens, strips, stream);
  }
  return dispatch_narrow_tokens<TOut, TAct, false>(p, tokens, strips, stream);
}

// The narrow kernel needs the sm_90a build's wgmma: Hopper itself (a later major version runs no
// sm_90a code).
bool device_runs_narrow_f8() { return current_cc_major() == 9; }

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int kiln_cuda_supports_fp8(void) { return device_supports_fp8() ? 1 : 0; }

extern "C" int kiln_cuda_quantize_e4m3(uint8_t* xq, float* scales, const void* x, int64_t x_stride, int x_dtype,
                                       int mode, float static_scale, float scale_ub, int64_t m, int64_t k,
                                       void* stream) {
  const char* name = "kiln_cuda_quantize_e4m3";
  KILN_REQUIRE(device_supports_fp8(), KILN_CUDA_ERR_UNSUPPORTED, "%s: FP8 needs compute capability 9.0 or later",
               name);
  KILN_REQUIRE(xq && scales && x, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null pointer", name);
  KILN_REQUIRE(m >= 0 && m <= 2147483647ll && k > 0 && x_stride >= k, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: bad sizes m=%lld k=%lld x_stride=%lld", name, (long long)m, (long long)k, (long long)x_stride);
  KILN_REQUIRE(mode == KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN || mode == KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: mode %d is neither dynamic per token nor static", name, mode);
  KILN_REQUIRE(mode != KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR || (static_scale > 0.0f && std::isfinite(static_scale)),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: a static scale must be positive and finite, got %g", name,
               static_scale);
  if (m == 0) return KILN_CUDA_OK;
  const QuantizeParams p{xq, scales, x, x_stride, k, mode, static_scale, scale_ub};
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(m)), block(kQuantizeThreads);
  KILN_DISPATCH_ANY(x_dtype, name, launch_pdl(m, quantize_e4m3_kernel<T>, grid, block, 0, s, p););
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}

extern "C" int kiln_cuda_dequantize_e4m3(void* out, const uint8_t* w, const float* scales, int64_t rows,
                                         int64_t cols, int dtype, void* stream) {
  const char* name = "kiln_cuda_dequantize_e4m3";
  KILN_REQUIRE(device_supports_fp8(), KILN_CUDA_ERR_UNSUPPORTED, "%s: FP8 needs compute capability 9.0 or later",
               name);
  KILN_REQUIRE(out && w && scales, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null pointer", name);
  KILN_REQUIRE(rows >= 0 && cols > 0, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes %lldx%lld", name,
               (long long)rows, (long long)cols);
  if (rows == 0) return KILN_CUDA_OK;
  const int64_t blocks = std::min<int64_t>((rows * cols + 255) / 256, 65536);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  KILN_DISPATCH_ANY(dtype, name,
                    dequantize_e4m3_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, s>>>(
                        static_cast<T*>(out), w, scales, rows, cols););
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}

extern "C" int kiln_cuda_gemv_f8(void* out, int64_t out_stride, int out_dtype, const uint8_t* xq,
                                 const float* x_scales, int gated, const uint8_t* w, const float* w_scales,
                                 const void* bias, int64_t m, int64_t n, int64_t k, int dtype, void* stream) {
  const char* name = "kiln_cuda_gemv_f8";
  KILN_REQUIRE(device_supports_fp8(), KILN_CUDA_ERR_UNSUPPORTED, "%s: FP8 needs compute capability 9.0 or later",
               name);
  if (const int status = check_f8_product(name, out, out_stride, out_dtype, xq, x_scales, gated, w, w_scales, bias, m,
                                           n, k, dtype, kGemvF8MaxTokens, kGemvF8Chunk);
      status != KILN_CUDA_OK)
    return status;
  if (m == 0) return KILN_CUDA_OK;
  const GemvF8Params p{out, xq, x_scales, w, w_scales, bias, out_stride, m, n, k};
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const bool is_gated = gated != 0;
  KILN_DISPATCH_ANY(dtype, name,
                    return out_dtype == KILN_CUDA_F32 ? dispatch_gemv_f8<float, T>(p, is_gated, s)
                                                      : dispatch_gemv_f8<T, T>(p, is_gated, s););
}

extern "C" int kiln_cuda_supports_gemm_f8_narrow(void) { return device_runs_narrow_f8() ? 1 : 0; }

extern "C" int64_t kiln_cuda_gemm_f8_narrow_workspace_size(int64_t m, int64_t n, int64_t k, int gated) {
  if (m <= 0 || n <= 0 || k <= 0 || k % kNarrowF8KTile != 0) return 0;
  const NarrowF8Plan plan = plan_narrow_f8(m, n, k, gated != 0);
  return plan.counter_bytes + plan.partial_bytes;
}

extern "C" int kiln_cuda_gemm_f8_narrow(void* out, int64_t out_stride, int out_dtype, const uint8_t* xq,
                                        const float* x_scales, int gated, const uint8_t* w, const float* w_scales,
                                        const void* bias, int64_t m, int64_t n, int64_t k, int dtype, void* workspace,
                                        int64_t workspace_bytes, void* stream) {
  const char* name = "kiln_cuda_gemm_f8_narrow";
  KILN_REQUIRE(device_runs_narrow_f8(), KILN_CUDA_ERR_UNSUPPORTED, "%s: needs a Hopper GPU (compute capability 9.x)",
               name);
  if (const int status = check_f8_product(name, out, out_stride, out_dtype, xq, x_scales, gated, w, w_scales, bias, m,
                                           n, k, dtype, kNarrowF8MaxTokens, kNarrowF8KTile);
      status != KILN_CUDA_OK)
    return status;
  if (m == 0) return KILN_CUDA_OK;
  const NarrowF8Plan plan = plan_narrow_f8(m, n, k, gated != 0);
  NarrowF8Params p{out, xq, x_scales, w, w_scales, bias, nullptr, nullptr, out_stride, m, n, k, plan.splits,
                   plan.k_tiles_per_split};
  if (plan.splits > 1) {
    const int64_t need = plan.counter_bytes + plan.partial_bytes;
    KILN_REQUIRE(workspace != nullptr && workspace_bytes >= need, KILN_CUDA_ERR_INVALID_ARGUMENT,
                 "%s: workspace of %lld bytes is smaller than the %lld needed", name, (long long)workspace_bytes,
                 (long long)need);
    KILN_REQUIRE((reinterpret_cast<uintptr_t>(workspace) & 255u) == 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
                 "%s: workspace must be 256-byte aligned", name);
    p.counters = static_cast<uint32_t*>(workspace);
    p.partials = reinterpret_cast<float*>(static_cast<char*>(workspace) + plan.counter_bytes);
  }
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const bool is_gated = gated != 0;
  KILN_DISPATCH_ANY(dtype, name,
                    return out_dtype == KILN_CUDA_F32
                               ? dispatch_narrow<float, T>(p, is_gated, plan.tokens, plan.strips, s)
                               : dispatch_narrow<T, T>(p, is_gated, plan.tokens, plan.strips, s););
}
