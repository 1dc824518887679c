// Row-wise layer ops of the CPU backend: embedding, RMSNorm, rotary, SiLU-and-mul, KV-cache
// write, row gather and argmax. Each parallelises over rows with OpenMP.
#include <omp.h>

#include <vector>

#include "common.h"
#include "kiln_sampling.h"

namespace {

constexpr int64_t kParallelMinElements = 1 << 14;

}  // namespace

extern "C" {

int kiln_cpu_embedding(float* out, const void* table, int table_dtype, const int32_t* ids,
                       int64_t num_tokens, int64_t hidden, int64_t vocab) {
  KILN_CHECK_PTR(out);
  KILN_CHECK_PTR(table);
  KILN_CHECK_PTR(ids);
  KILN_CHECK_DTYPE(table_dtype);
  KILN_CHECK(num_tokens >= 0 && hidden > 0 && vocab > 0, "kiln_cpu_embedding: bad sizes");
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (ids[t] < 0 || ids[t] >= vocab) {
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "token id %d at position %lld is outside the vocabulary [0, %lld)",
                        ids[t], (long long)t, (long long)vocab);
    }
  }
  const int64_t row_bytes = hidden * kiln::dtype_size(table_dtype);
#pragma omp parallel for schedule(static) if (num_tokens * hidden > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t t = 0; t < num_tokens; ++t) {
    const char* row = static_cast<const char*>(table) + ids[t] * row_bytes;
    kiln::load_f32(out + t * hidden, row, table_dtype, hidden);
  }
  return KILN_OK;
}

int kiln_cpu_rms_norm(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                      float* residual, int64_t residual_stride, const void* weight,
                      int weight_dtype, int64_t rows, int64_t dim, float eps) {
  KILN_CHECK_PTR(out);
  KILN_CHECK_PTR(x);
  KILN_CHECK_PTR(weight);
  KILN_CHECK_DTYPE(weight_dtype);
  KILN_CHECK(rows >= 0 && dim > 0, "kiln_cpu_rms_norm: bad sizes rows=%lld dim=%lld",
             (long long)rows, (long long)dim);
  KILN_CHECK(out_stride >= dim && x_stride >= dim && (residual == nullptr || residual_stride >= dim),
             "kiln_cpu_rms_norm: a row stride is smaller than dim %lld", (long long)dim);
  std::vector<float> weight_f32(static_cast<size_t>(dim));
  kiln::load_f32(weight_f32.data(), weight, weight_dtype, dim);
  const float* w = weight_f32.data();
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * x_stride;
    float* dst = out + r * out_stride;
    const float* source = in;
    if (residual != nullptr) {
      float* res = residual + r * residual_stride;
#pragma omp simd
      for (int64_t i = 0; i < dim; ++i) res[i] += in[i];
      source = res;
    }
    float sum_squares = 0.0f;
#pragma omp simd reduction(+ : sum_squares)
    for (int64_t i = 0; i < dim; ++i) sum_squares += source[i] * source[i];
    const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) dst[i] = source[i] * inv_rms * w[i];
  }
  return KILN_OK;
}

int kiln_cpu_head_rms_norm(float* x, int64_t token_stride, int64_t num_tokens, int64_t num_heads,
                           int64_t head_dim, const void* weight, int weight_dtype, float eps) {
  KILN_CHECK_PTR(x);
  KILN_CHECK_PTR(weight);
  KILN_CHECK_DTYPE(weight_dtype);
  KILN_CHECK(num_tokens >= 0 && num_heads > 0 && head_dim > 0 && token_stride >= num_heads * head_dim,
             "kiln_cpu_head_rms_norm: bad sizes or stride");
  std::vector<float> weight_f32(static_cast<size_t>(head_dim));
  kiln::load_f32(weight_f32.data(), weight, weight_dtype, head_dim);
  const float* w = weight_f32.data();
  const int64_t rows = num_tokens * num_heads;
#pragma omp parallel for schedule(static) if (rows * head_dim > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t r = 0; r < rows; ++r) {
    float* head = x + (r / num_heads) * token_stride + (r % num_heads) * head_dim;
    float sum_squares = 0.0f;
#pragma omp simd reduction(+ : sum_squares)
    for (int64_t i = 0; i < head_dim; ++i) sum_squares += head[i] * head[i];
    const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(head_dim) + eps);
#pragma omp simd
    for (int64_t i = 0; i < head_dim; ++i) head[i] = head[i] * inv_rms * w[i];
  }
  return KILN_OK;
}

int kiln_cpu_rotary(float* q, int64_t q_stride, int64_t num_q_heads, float* k,
                    int64_t k_stride, int64_t num_kv_heads, int64_t head_dim,
                    const int32_t* positions, int64_t num_tokens, const float* cos_sin,
                    int64_t max_position, int is_neox) {
  KILN_CHECK_PTR(positions);
  KILN_CHECK_PTR(cos_sin);
  KILN_CHECK(head_dim > 0 && head_dim % 2 == 0, "kiln_cpu_rotary: head_dim %lld must be even",
             (long long)head_dim);
  KILN_CHECK(q == nullptr || q_stride >= num_q_heads * head_dim, "kiln_cpu_rotary: q stride too small");
  KILN_CHECK(k == nullptr || k_stride >= num_kv_heads * head_dim, "kiln_cpu_rotary: k stride too small");
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (positions[t] < 0 || positions[t] >= max_position) {
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "position %d of token %lld is outside [0, %lld)",
                        positions[t], (long long)t, (long long)max_position);
    }
  }
  const int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static) if (num_tokens * (num_q_heads + num_kv_heads) * head_dim > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* cos = cos_sin + static_cast<int64_t>(positions[t]) * head_dim;
    const float* sin = cos + half;
    auto rotate = [&](float* head) {
      if (is_neox) {
        for (int64_t i = 0; i < half; ++i) {
          float a = head[i], b = head[i + half];
          head[i] = a * cos[i] - b * sin[i];
          head[i + half] = b * cos[i] + a * sin[i];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          float a = head[2 * i], b = head[2 * i + 1];
          head[2 * i] = a * cos[i] - b * sin[i];
          head[2 * i + 1] = b * cos[i] + a * sin[i];
        }
      }
    };
    if (q != nullptr)
      for (int64_t h = 0; h < num_q_heads; ++h) rotate(q + t * q_stride + h * head_dim);
    if (k != nullptr)
      for (int64_t h = 0; h < num_kv_heads; ++h) rotate(k + t * k_stride + h * head_dim);
  }
  return KILN_OK;
}

int kiln_cpu_silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t inter) {
  KILN_CHECK_PTR(out);
  KILN_CHECK_PTR(gate_up);
  KILN_CHECK(num_tokens >= 0 && inter > 0, "kiln_cpu_silu_and_mul: bad sizes");
#pragma omp parallel for schedule(static) if (num_tokens * inter > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* gate = gate_up + t * 2 * inter;
    const float* up = gate + inter;
    float* dst = out + t * inter;
#pragma omp simd
    for (int64_t i = 0; i < inter; ++i) dst[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
  return KILN_OK;
}

// Every slot -1 (padding) or in [0, num_slots), checked before any write.
static int check_slots(const int32_t* slot_mapping, int64_t num_tokens, int64_t num_slots) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (slot_mapping[t] < -1 || slot_mapping[t] >= num_slots) {
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "slot %d of token %lld is outside [-1, %lld)",
                        slot_mapping[t], (long long)t, (long long)num_slots);
    }
  }
  return KILN_OK;
}

int kiln_cpu_write_kv_cache(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                            float* k_cache, float* v_cache, const int32_t* slot_mapping,
                            int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim,
                            int64_t num_slots) {
  KILN_CHECK_PTR(k);
  KILN_CHECK_PTR(v);
  KILN_CHECK_PTR(k_cache);
  KILN_CHECK_PTR(v_cache);
  KILN_CHECK_PTR(slot_mapping);
  const int64_t row = num_kv_heads * head_dim;
  KILN_CHECK(row > 0 && k_stride >= row && v_stride >= row, "kiln_cpu_write_kv_cache: bad sizes or strides");
  if (const int status = check_slots(slot_mapping, num_tokens, num_slots); status != KILN_OK) return status;
#pragma omp parallel for schedule(static) if (num_tokens * row > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    std::memcpy(k_cache + slot * row, k + t * k_stride, static_cast<size_t>(row) * sizeof(float));
    std::memcpy(v_cache + slot * row, v + t * v_stride, static_cast<size_t>(row) * sizeof(float));
  }
  return KILN_OK;
}

int kiln_cpu_write_kv_cache_e4m3(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                                 uint8_t* k_cache, uint8_t* v_cache, float* k_scales, float* v_scales,
                                 const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads,
                                 int64_t head_dim, int64_t num_slots) {
  KILN_CHECK_PTR(k);
  KILN_CHECK_PTR(v);
  KILN_CHECK_PTR(k_cache);
  KILN_CHECK_PTR(v_cache);
  KILN_CHECK_PTR(k_scales);
  KILN_CHECK_PTR(v_scales);
  KILN_CHECK_PTR(slot_mapping);
  const int64_t row = num_kv_heads * head_dim;
  KILN_CHECK(head_dim > 0 && num_kv_heads > 0 && k_stride >= row && v_stride >= row,
             "kiln_cpu_write_kv_cache_e4m3: bad sizes or strides");
  if (const int status = check_slots(slot_mapping, num_tokens, num_slots); status != KILN_OK) return status;
#pragma omp parallel for schedule(static) if (num_tokens * row > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    for (int64_t h = 0; h < num_kv_heads; ++h) {
      const int64_t at = slot * row + h * head_dim;
      kiln::quantize_e4m3_row(k_cache + at, k_scales + slot * num_kv_heads + h, k + t * k_stride + h * head_dim,
                              head_dim);
      kiln::quantize_e4m3_row(v_cache + at, v_scales + slot * num_kv_heads + h, v + t * v_stride + h * head_dim,
                              head_dim);
    }
  }
  return KILN_OK;
}

int kiln_cpu_gather_rows(float* out, const float* in, int64_t in_stride, const int32_t* rows,
                         int64_t num_out, int64_t num_in, int64_t dim) {
  KILN_CHECK_PTR(out);
  KILN_CHECK_PTR(in);
  KILN_CHECK_PTR(rows);
  KILN_CHECK(dim > 0 && in_stride >= dim, "kiln_cpu_gather_rows: bad sizes");
  for (int64_t i = 0; i < num_out; ++i) {
    if (rows[i] < 0 || rows[i] >= num_in) {
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "row %d is outside [0, %lld)", rows[i], (long long)num_in);
    }
    std::memcpy(out + i * dim, in + rows[i] * in_stride, static_cast<size_t>(dim) * sizeof(float));
  }
  return KILN_OK;
}

int kiln_cpu_argmax(const float* logits, int64_t batch, int64_t vocab, int32_t* out_ids,
                    float* out_logprobs) {
  KILN_CHECK_PTR(logits);
  KILN_CHECK_PTR(out_ids);
  KILN_CHECK(batch >= 0 && vocab > 0, "kiln_cpu_argmax: bad sizes");
#pragma omp parallel for schedule(static) if (batch > 1 && batch * vocab > kParallelMinElements) num_threads(kiln::op_threads())
  for (int64_t b = 0; b < batch; ++b) {
    // NOTE: logits are read as the sampler reads them (NaN as -inf, +inf as the largest float),
    // so a greedy row takes the same id whichever path its step takes.
    const float* row = logits + b * vocab;
    int64_t best = 0;
    float max = kiln::sampling::clean(row[0]);
    for (int64_t i = 1; i < vocab; ++i) {
      const float v = kiln::sampling::clean(row[i]);
      if (v > max) max = v, best = i;
    }
    out_ids[b] = static_cast<int32_t>(best);
    if (out_logprobs != nullptr) {
      double sum = 0.0;
      if (max != -INFINITY)
        for (int64_t i = 0; i < vocab; ++i)
          sum += std::exp(static_cast<double>(kiln::sampling::clean(row[i])) - static_cast<double>(max));
      out_logprobs[b] = max == -INFINITY ? static_cast<float>(-std::log(static_cast<double>(vocab)))
                                         : static_cast<float>(-std::log(sum));
    }
  }
  return KILN_OK;
}

}  // extern "C"
