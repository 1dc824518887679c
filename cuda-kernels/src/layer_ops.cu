// Launchers of the row-wise layer ops (device code in layer_ops.cuh).
#include "layer_ops.cuh"

namespace kiln {
namespace {

constexpr int64_t kMaxGridX = 2147483647;

int64_t grid_stride_blocks(int64_t total, int threads) {
  const int64_t needed = (total + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(current_sm_count()) * 16;
  return needed < cap ? (needed > 0 ? needed : 1) : cap;
}

template <typename T>
int launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  const bool vec = p.dim % 8 == 0 && aligned16(p.out) && aligned16(p.x) && aligned16(p.weight) &&
                   (p.residual == nullptr || aligned16(p.residual)) && p.out_stride % 8 == 0 &&
                   p.x_stride % 8 == 0 && (p.residual == nullptr || p.residual_stride % 8 == 0);
  const int64_t nvec = p.dim / 8;
  if constexpr (sizeof(T) == 2) {  // 16-byte vectors of 8 elements
    if (vec && nvec <= 4 * 1024) {
      // NOTE: 128..512 threads with up to 8 vectors each keeps one row in registers.
      int threads = 128;
      while (threads < 512 && nvec > threads * 2) threads *= 2;
      const int64_t per = (nvec + threads - 1) / threads;
      const dim3 grid(static_cast<unsigned>(p.rows));
      if (per <= 1) launch_pdl(p.rows, rms_norm_vec_kernel<T, 1>, grid, dim3(threads), 0, stream, p);
      else if (per <= 2) launch_pdl(p.rows, rms_norm_vec_kernel<T, 2>, grid, dim3(threads), 0, stream, p);
      else if (per <= 4) launch_pdl(p.rows, rms_norm_vec_kernel<T, 4>, grid, dim3(threads), 0, stream, p);
      else launch_pdl(p.rows, rms_norm_vec_kernel<T, 8>, grid, dim3(threads), 0, stream, p);
      KILN_CHECK_LAUNCH("kiln_cuda_rms_norm");
      return KILN_CUDA_OK;
    }
  }
  launch_pdl(p.rows, rms_norm_scalar_kernel<T>, dim3(static_cast<unsigned>(p.rows)), dim3(256), 0, stream, p);
  KILN_CHECK_LAUNCH("kiln_cuda_rms_norm");
  return KILN_CUDA_OK;
}

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int kiln_cuda_rms_norm(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                                  void* residual, int64_t residual_stride, const void* weight,
                                  int64_t rows, int64_t dim, float eps, int dtype, void* stream) {
  KILN_REQUIRE(out && x && weight, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_rms_norm: null pointer");
  KILN_REQUIRE(rows >= 0 && rows <= kMaxGridX && dim > 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "kiln_cuda_rms_norm: bad sizes rows=%lld dim=%lld", (long long)rows, (long long)dim);
  KILN_REQUIRE(out_stride >= dim && x_stride >= dim && (residual == nullptr || residual_stride >= dim),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_rms_norm: a row stride is smaller than dim %lld",
               (long long)dim);
  if (rows == 0) return KILN_CUDA_OK;
  RmsNormParams p{out, x, residual, weight, out_stride, x_stride, residual_stride, rows, dim, eps};
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_rms_norm",
                     return launch_rms_norm<T>(p, static_cast<cudaStream_t>(stream)););
}

extern "C" int kiln_cuda_head_rms_norm(void* x, int64_t token_stride, int64_t num_tokens,
                                       int64_t num_heads, int64_t head_dim, const void* weight,
                                       float eps, int dtype, void* stream) {
  KILN_REQUIRE(x && weight, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_head_rms_norm: null pointer");
  KILN_REQUIRE(num_tokens >= 0 && num_heads > 0 && head_dim > 0 && head_dim <= 512,
               KILN_CUDA_ERR_UNSUPPORTED, "kiln_cuda_head_rms_norm: head_dim %lld not in [1, 512] or bad sizes",
               (long long)head_dim);
  KILN_REQUIRE(token_stride >= num_heads * head_dim, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "kiln_cuda_head_rms_norm: token stride %lld < heads * head_dim", (long long)token_stride);
  const int64_t rows = num_tokens * num_heads;
  if (rows == 0) return KILN_CUDA_OK;
  constexpr int kWarps = 8;
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  KILN_REQUIRE(blocks <= kMaxGridX, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_head_rms_norm: too many rows");
  HeadRmsNormParams p{x, weight, token_stride, num_tokens, num_heads, head_dim, eps};
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_head_rms_norm", {
    launch_pdl(num_tokens, head_rms_norm_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(kWarps * 32), 0,
               static_cast<cudaStream_t>(stream), p);
    KILN_CHECK_LAUNCH("kiln_cuda_head_rms_norm");
    return KILN_CUDA_OK;
  });
}

extern "C" int kiln_cuda_rotary(void* q, int64_t q_stride, int64_t num_q_heads, void* k,
                                int64_t k_stride, int64_t num_kv_heads, int64_t head_dim,
                                const int32_t* positions, int64_t num_tokens, const float* cos_sin,
                                int64_t max_position, int is_neox, int dtype, void* stream) {
  KILN_REQUIRE(positions && cos_sin, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_rotary: null pointer");
  KILN_REQUIRE(head_dim > 0 && head_dim % 8 == 0, KILN_CUDA_ERR_UNSUPPORTED,
               "kiln_cuda_rotary: head_dim %lld is not a multiple of 8", (long long)head_dim);
  KILN_REQUIRE(num_tokens >= 0 && num_tokens <= kMaxGridX && max_position > 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "kiln_cuda_rotary: bad sizes");
  KILN_REQUIRE(q == nullptr || (num_q_heads >= 0 && q_stride >= num_q_heads * head_dim && q_stride % 8 == 0 && aligned16(q)),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_rotary: q stride must be >= heads * head_dim, a multiple of 8, q 16-byte aligned");
  KILN_REQUIRE(k == nullptr || (num_kv_heads >= 0 && k_stride >= num_kv_heads * head_dim && k_stride % 8 == 0 && aligned16(k)),
               KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_rotary: k stride must be >= heads * head_dim, a multiple of 8, k 16-byte aligned");
  KILN_REQUIRE(aligned16(cos_sin), KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_rotary: cos_sin must be 16-byte aligned");
  if (num_tokens == 0 || (q == nullptr && k == nullptr)) return KILN_CUDA_OK;
  RotaryParams p{q, k, q_stride, k_stride, num_q_heads, num_kv_heads, head_dim, num_tokens, max_position,
                 positions, cos_sin, is_neox};
  const int64_t items = ((q ? num_q_heads : 0) + (k ? num_kv_heads : 0)) * (head_dim / 8);
  const int threads = items >= 256 ? 256 : (items >= 128 ? 128 : 64);
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_rotary", {
    rotary_kernel<T><<<num_tokens, threads, 0, static_cast<cudaStream_t>(stream)>>>(p);
    KILN_CHECK_LAUNCH("kiln_cuda_rotary");
    return KILN_CUDA_OK;
  });
}

namespace kiln {
namespace {

constexpr int kElementwiseThreads = 256;

template <typename T>
int launch_silu_and_mul(void* out, const void* gate_up, int64_t num_tokens, int64_t inter, bool vec, cudaStream_t s) {
  if constexpr (sizeof(T) == 2) {  // 16-byte vectors of 8 elements
    if (vec) {
      silu_and_mul_vec_kernel<T><<<grid_stride_blocks(num_tokens * inter / 8, kElementwiseThreads),
                                   kElementwiseThreads, 0, s>>>(static_cast<T*>(out), static_cast<const T*>(gate_up),
                                                                num_tokens, inter);
      KILN_CHECK_LAUNCH("kiln_cuda_silu_and_mul");
      return KILN_CUDA_OK;
    }
  }
  silu_and_mul_scalar_kernel<T><<<grid_stride_blocks(num_tokens * inter, kElementwiseThreads), kElementwiseThreads, 0,
                                  s>>>(static_cast<T*>(out), static_cast<const T*>(gate_up), num_tokens, inter);
  KILN_CHECK_LAUNCH("kiln_cuda_silu_and_mul");
  return KILN_CUDA_OK;
}

template <typename T>
int launch_add_bias(void* x, int64_t x_stride, const void* bias, int64_t rows, int64_t dim, bool vec, cudaStream_t s) {
  if constexpr (sizeof(T) == 2) {  // 16-byte vectors of 8 elements
    if (vec) {
      add_bias_vec_kernel<T><<<grid_stride_blocks(rows * dim / 8, kElementwiseThreads), kElementwiseThreads, 0, s>>>(
          static_cast<T*>(x), x_stride, static_cast<const T*>(bias), rows, dim);
      KILN_CHECK_LAUNCH("kiln_cuda_add_bias");
      return KILN_CUDA_OK;
    }
  }
  add_bias_kernel<T><<<grid_stride_blocks(rows * dim, kElementwiseThreads), kElementwiseThreads, 0, s>>>(
      static_cast<T*>(x), x_stride, static_cast<const T*>(bias), rows, dim);
  KILN_CHECK_LAUNCH("kiln_cuda_add_bias");
  return KILN_CUDA_OK;
}

}  // namespace
}  // namespace kiln

extern "C" int kiln_cuda_silu_and_mul(void* out, const void* gate_up, int64_t num_tokens,
                                      int64_t inter, int dtype, void* stream) {
  KILN_REQUIRE(out && gate_up, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_silu_and_mul: null pointer");
  KILN_REQUIRE(num_tokens >= 0 && inter > 0, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_silu_and_mul: bad sizes");
  if (num_tokens == 0) return KILN_CUDA_OK;
  const bool vec = inter % 8 == 0 && aligned16(out) && aligned16(gate_up);
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_silu_and_mul",
                    return launch_silu_and_mul<T>(out, gate_up, num_tokens, inter, vec,
                                                  static_cast<cudaStream_t>(stream)););
}

namespace {

template <typename T>
int launch_gather(const char* name, void* out, int64_t out_stride, const void* in, int64_t in_stride,
                  const int32_t* index, int64_t num_out, int64_t num_in, int64_t dim, cudaStream_t s) {
  const bool vec = sizeof(T) == 2 && dim % 8 == 0 && in_stride % 8 == 0 && out_stride % 8 == 0 && aligned16(out) &&
                   aligned16(in);
  const int64_t work = vec ? dim / 8 : dim;
  const int threads = work >= 256 ? 256 : (work >= 128 ? 128 : 64);
  if constexpr (sizeof(T) == 2) {  // 16-byte vectors of 8 elements
    if (vec) {
      launch_pdl(num_out, gather_rows_kernel<T, true>, dim3(static_cast<unsigned>(num_out)), dim3(threads), 0, s,
                 static_cast<T*>(out), out_stride, static_cast<const T*>(in), in_stride, index, num_in, dim);
      KILN_CHECK_LAUNCH(name);
      return KILN_CUDA_OK;
    }
  }
  {
    launch_pdl(num_out, gather_rows_kernel<T, false>, dim3(static_cast<unsigned>(num_out)), dim3(threads), 0, s,
               static_cast<T*>(out), out_stride, static_cast<const T*>(in), in_stride, index, num_in, dim);
  }
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}

}  // namespace

extern "C" int kiln_cuda_embedding(void* out, const void* table, const int32_t* ids, int64_t num_tokens,
                                   int64_t hidden, int64_t vocab, int dtype, void* stream) {
  KILN_REQUIRE(out && table && ids, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_embedding: null pointer");
  KILN_REQUIRE(num_tokens >= 0 && num_tokens <= kMaxGridX && hidden > 0 && vocab > 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_embedding: bad sizes");
  if (num_tokens == 0) return KILN_CUDA_OK;
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_embedding",
                     return launch_gather<T>("kiln_cuda_embedding", out, hidden, table, hidden, ids, num_tokens,
                                             vocab, hidden, static_cast<cudaStream_t>(stream)););
}

extern "C" int kiln_cuda_gather_rows(void* out, const void* in, int64_t in_stride, const int32_t* rows,
                                     int64_t num_out, int64_t num_in, int64_t dim, int dtype, void* stream) {
  KILN_REQUIRE(out && in && rows, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_gather_rows: null pointer");
  KILN_REQUIRE(num_out >= 0 && num_out <= kMaxGridX && num_in >= 0 && dim > 0 && in_stride >= dim,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_gather_rows: bad sizes");
  if (num_out == 0) return KILN_CUDA_OK;
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_gather_rows",
                     return launch_gather<T>("kiln_cuda_gather_rows", out, dim, in, in_stride, rows, num_out,
                                             num_in, dim, static_cast<cudaStream_t>(stream)););
}

extern "C" int kiln_cuda_add_bias(void* x, int64_t x_stride, const void* bias, int64_t rows, int64_t dim,
                                  int dtype, void* stream) {
  KILN_REQUIRE(x && bias, KILN_CUDA_ERR_INVALID_ARGUMENT, "kiln_cuda_add_bias: null pointer");
  KILN_REQUIRE(rows >= 0 && dim > 0 && x_stride >= dim, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "kiln_cuda_add_bias: bad sizes");
  if (rows == 0) return KILN_CUDA_OK;
  const bool vec = dim % 8 == 0 && x_stride % 8 == 0 && aligned16(x) && aligned16(bias);
  KILN_DISPATCH_ANY(dtype, "kiln_cuda_add_bias",
                    return launch_add_bias<T>(x, x_stride, bias, rows, dim, vec, static_cast<cudaStream_t>(stream)););
}
