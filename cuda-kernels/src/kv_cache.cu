// Launchers of the KV-cache write (device code in kv_cache.cuh).
#include "kv_cache.cuh"

namespace kiln {
namespace {

int check_kv_args(const char* name, const KvWriteParams& p, int64_t num_tokens) {
  KILN_REQUIRE(p.k && p.v && p.k_cache && p.v_cache && p.slot_mapping, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: null pointer", name);
  KILN_REQUIRE(p.head_dim > 0 && p.head_dim % 8 == 0, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: head_dim %lld is not a multiple of 8", name, (long long)p.head_dim);
  KILN_REQUIRE(num_tokens >= 0 && num_tokens <= 2147483647 && p.num_kv_heads > 0 && p.num_slots >= 0 &&
                   p.num_slots <= 2147483647,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes", name);
  const int64_t row = p.num_kv_heads * p.head_dim;
  KILN_REQUIRE(p.k_stride >= row && p.v_stride >= row && p.k_stride % 8 == 0 && p.v_stride % 8 == 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: k/v strides must be >= kv_heads * head_dim and multiples of 8",
               name);
  KILN_REQUIRE(aligned16(p.k) && aligned16(p.v) && aligned16(p.k_cache) && aligned16(p.v_cache),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: k, v and the caches must be 16-byte aligned", name);
  return KILN_CUDA_OK;
}

int kv_threads(int64_t items) { return items >= 256 ? 256 : (items >= 128 ? 128 : 64); }

// The FP8 write's extra conditions: scales given, and rows short enough for one warp's registers.
int check_e4m3_args(const char* name, const KvWriteParams& p) {
  KILN_REQUIRE(p.k_scales && p.v_scales, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null scales", name);
  KILN_REQUIRE(p.head_dim <= kE4m3MaxHeadDim, KILN_CUDA_ERR_UNSUPPORTED, "%s: head_dim %lld is over %d", name,
               (long long)p.head_dim, kE4m3MaxHeadDim);
  return KILN_CUDA_OK;
}

// An FP8 write takes a warp per row of K or V: up to 8 warps a token.
int e4m3_threads(int64_t num_kv_heads) { return num_kv_heads >= 4 ? 256 : (num_kv_heads >= 2 ? 128 : 64); }

// The parameters of a write without rotary (scales null for a cache of the activations' type).
KvWriteParams write_params(const void* k, int64_t k_stride, const void* v, int64_t v_stride, void* k_cache,
                           void* v_cache, float* k_scales, float* v_scales, const int32_t* slot_mapping,
                           int64_t num_kv_heads, int64_t head_dim, int64_t num_slots) {
  KvWriteParams p{};
  p.k = k;
  p.v = v;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.slot_mapping = slot_mapping;
  p.k_stride = k_stride;
  p.v_stride = v_stride;
  p.num_kv_heads = num_kv_heads;
  p.head_dim = head_dim;
  p.num_slots = num_slots;
  p.k_scales = k_scales;
  p.v_scales = v_scales;
  return p;
}

// The rotary writes' extra conditions.
int check_rotary_args(const char* name, const KvWriteParams& p) {
  KILN_REQUIRE(p.positions && p.cos_sin && p.max_position > 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: positions and cos_sin are required", name);
  KILN_REQUIRE(aligned16(p.cos_sin), KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: cos_sin must be 16-byte aligned", name);
  KILN_REQUIRE(p.q == nullptr || (p.num_q_heads >= 0 && p.q_stride >= p.num_q_heads * p.head_dim &&
                                  p.q_stride % 8 == 0 && aligned16(p.q)),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: q stride must be >= heads * head_dim and a multiple of 8", name);
  return KILN_CUDA_OK;
}

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int kiln_cuda_write_kv_cache(const void* k, int64_t k_stride, const void* v, int64_t v_stride,
                                        void* k_cache, void* v_cache, const int32_t* slot_mapping,
                                        int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim,
                                        int64_t num_slots, int dtype, void* stream) {
  const KvWriteParams p = write_params(k, k_stride, v, v_stride, k_cache, v_cache, nullptr, nullptr, slot_mapping,
                                       num_kv_heads, head_dim, num_slots);
  const int status = check_kv_args("kiln_cuda_write_kv_cache", p, num_tokens);
  if (status != KILN_CUDA_OK) return status;
  if (num_tokens == 0) return KILN_CUDA_OK;
  const int threads = kv_threads(2 * num_kv_heads * head_dim / 8);
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_write_kv_cache", {
    launch_pdl(num_tokens, kv_write_kernel<T, false>, dim3(static_cast<unsigned>(num_tokens)), dim3(threads), 0,
               static_cast<cudaStream_t>(stream), p);
    KILN_CHECK_LAUNCH("kiln_cuda_write_kv_cache");
    return KILN_CUDA_OK;
  });
}

extern "C" int kiln_cuda_rotary_write_kv_cache(void* q, int64_t q_stride, int64_t num_q_heads, const void* k,
                                               int64_t k_stride, const void* v, int64_t v_stride, void* k_cache,
                                               void* v_cache, const int32_t* slot_mapping,
                                               const int32_t* positions, const float* cos_sin,
                                               int64_t max_position, int is_neox, int64_t num_tokens,
                                               int64_t num_kv_heads, int64_t head_dim, int64_t num_slots,
                                               int dtype, void* stream) {
  const char* name = "kiln_cuda_rotary_write_kv_cache";
  KvWriteParams p{q, k, v, k_cache, v_cache, slot_mapping, positions, cos_sin, q_stride, k_stride, v_stride,
                  num_q_heads, num_kv_heads, head_dim, num_slots, max_position, is_neox};
  int status = check_kv_args(name, p, num_tokens);
  if (status == KILN_CUDA_OK) status = check_rotary_args(name, p);
  if (status != KILN_CUDA_OK) return status;
  if (num_tokens == 0) return KILN_CUDA_OK;
  const int threads = kv_threads(((q ? num_q_heads : 0) + 2 * num_kv_heads) * head_dim / 8);
  KILN_DISPATCH_ANY(dtype, name, {
    launch_pdl(num_tokens, kv_write_kernel<T, true>, dim3(static_cast<unsigned>(num_tokens)), dim3(threads), 0,
               static_cast<cudaStream_t>(stream), p);
    KILN_CHECK_LAUNCH(name);
    return KILN_CUDA_OK;
  });
}

extern "C" int kiln_cuda_write_kv_cache_e4m3(const void* k, int64_t k_stride, const void* v, int64_t v_stride,
                                             uint8_t* k_cache, uint8_t* v_cache, float* k_scales, float* v_scales,
                                             const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
                                             int64_t head_dim, int64_t num_slots, int dtype, void* stream) {
  const char* name = "kiln_cuda_write_kv_cache_e4m3";
  const KvWriteParams p = write_params(k, k_stride, v, v_stride, k_cache, v_cache, k_scales, v_scales, slot_mapping,
                                       num_kv_heads, head_dim, num_slots);
  int status = check_kv_args(name, p, num_tokens);
  if (status == KILN_CUDA_OK) status = check_e4m3_args(name, p);
  if (status != KILN_CUDA_OK) return status;
  if (num_tokens == 0) return KILN_CUDA_OK;
  KILN_DISPATCH_HALF(dtype, name, {
    launch_pdl(num_tokens, kv_write_e4m3_kernel<T, false>, dim3(static_cast<unsigned>(num_tokens)),
               dim3(e4m3_threads(num_kv_heads)), 0, static_cast<cudaStream_t>(stream), p);
    KILN_CHECK_LAUNCH(name);
    return KILN_CUDA_OK;
  });
}

extern "C" int kiln_cuda_rotary_write_kv_cache_e4m3(void* q, int64_t q_stride, int64_t num_q_heads, const void* k,
                                                    int64_t k_stride, const void* v, int64_t v_stride,
                                                    uint8_t* k_cache, uint8_t* v_cache, float* k_scales,
                                                    float* v_scales, const int32_t* slot_mapping,
                                                    const int32_t* positions, const float* cos_sin,
                                                    int64_t max_position, int is_neox, int64_t num_tokens,
                                                    int64_t num_kv_heads, int64_t head_dim, int64_t num_slots,
                                                    int dtype, void* stream) {
  const char* name = "kiln_cuda_rotary_write_kv_cache_e4m3";
  KvWriteParams p{q, k, v, k_cache, v_cache, slot_mapping, positions, cos_sin, q_stride, k_stride, v_stride,
                  num_q_heads, num_kv_heads, head_dim, num_slots, max_position, is_neox, k_scales, v_scales};
  int status = check_kv_args(name, p, num_tokens);
  if (status == KILN_CUDA_OK) status = check_e4m3_args(name, p);
  if (status == KILN_CUDA_OK) status = check_rotary_args(name, p);
  if (status != KILN_CUDA_OK) return status;
  if (num_tokens == 0) return KILN_CUDA_OK;
  KILN_DISPATCH_HALF(dtype, name, {
    launch_pdl(num_tokens, kv_write_e4m3_kernel<T, true>, dim3(static_cast<unsigned>(num_tokens)),
               dim3(e4m3_threads(num_kv_heads)), 0, static_cast<cudaStream_t>(stream), p);
    KILN_CHECK_LAUNCH(name);
    return KILN_CUDA_OK;
  });
}
