// Host-side pieces of the op-test harness (see harness.h).
#include <omp.h>

#include <cmath>
#include <cstring>

#include "harness.h"

uint16_t to_half_bits(float f, int dtype) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (dtype == 2) {  // bf16
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7fc0u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
  }
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (abs < 0x38800000u) {                                               // subnormal half
    float v;
    std::memcpy(&v, &abs, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(v * 16777216.0f)));
  }
  uint32_t h = ((((abs >> 23) - 127 + 15) << 10) | ((abs & 0x7fffffu) >> 13));
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float from_half_bits(uint16_t b, int dtype) {
  if (dtype == 2) {
    const uint32_t x = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
  }
  const int sign = (b >> 15) & 1, exp = (b >> 10) & 31, mant = b & 1023;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(mant + 1024), exp - 25);
  return sign ? -v : v;
}

DeviceBuffer upload(const std::vector<float>& values, int dtype) {
  if (dtype == 0) return upload_raw(values);
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = to_half_bits(values[i], dtype);
  return upload_raw(bits);
}

std::vector<float> download(const DeviceBuffer& buffer, size_t count, int dtype) {
  if (dtype == 0) return download_raw<float>(buffer, count);
  std::vector<uint16_t> bits = download_raw<uint16_t>(buffer, count);
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = from_half_bits(bits[i], dtype);
  return v;
}

Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& naive,
                   double slack_rel) {
  Comparison c;
  double max_ref = 0, num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(ref[i])) {
      if (!std::isnan(got[i])) ++c.bad;
      continue;
    }
    if (!std::isfinite(got[i])) {
      ++c.bad;
      continue;
    }
    const double e = std::fabs(static_cast<double>(got[i]) - ref[i]);
    c.max_err = std::max(c.max_err, e);
    if (!naive.empty() && std::isfinite(naive[i]))
      c.naive_err = std::max(c.naive_err, std::fabs(static_cast<double>(naive[i]) - ref[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
    num += e * e;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  c.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  c.bound = 2.0 * c.naive_err + slack_rel * std::max(1.0, max_ref);
  c.pass = c.bad == 0 && c.max_err <= c.bound;
  return c;
}

void naive_attention_lowp(float* out, const float* q, const float* k_cache, const float* v_cache,
                          const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* query_start,
                          const int32_t* seq_lens, int64_t num_seqs, int64_t num_tokens, int64_t num_q_heads,
                          int64_t num_kv_heads, int64_t head_dim, int64_t block_size, float scale, int dtype) {
  const int64_t group = num_q_heads / num_kv_heads;
  const int64_t kv_row = num_kv_heads * head_dim;
#pragma omp parallel
  {
    std::vector<float> p;
    std::vector<double> acc(head_dim);
#pragma omp for schedule(dynamic, 4)
    for (int64_t item = 0; item < num_tokens * num_q_heads; ++item) {
      const int64_t token = item / num_q_heads, head = item % num_q_heads;
      int64_t seq = 0;
      while (seq + 1 < num_seqs && query_start[seq + 1] <= token) ++seq;
      const int64_t query_len = query_start[seq + 1] - query_start[seq];
      const int64_t pos = seq_lens[seq] - query_len + (token - query_start[seq]);
      const int64_t visible = pos + 1;
      const float* qh = q + (token * num_q_heads + head) * head_dim;
      const int64_t kvh = head / group;
      p.assign(visible, 0.0f);
      float mx = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) {
        const int64_t slot = static_cast<int64_t>(block_tables[seq * max_blocks_per_seq + j / block_size]) * block_size +
                             j % block_size;
        const float* kh = k_cache + slot * kv_row + kvh * head_dim;
        float dot = 0;
        for (int64_t d = 0; d < head_dim; ++d) dot += qh[d] * kh[d];
        p[j] = round_to(dot, dtype) * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < visible; ++j) sum += (p[j] = std::exp(p[j] - mx));
      for (int64_t j = 0; j < visible; ++j) p[j] = round_to(static_cast<float>(p[j] / sum), dtype);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < visible; ++j) {
        const int64_t slot = static_cast<int64_t>(block_tables[seq * max_blocks_per_seq + j / block_size]) * block_size +
                             j % block_size;
        const float* vh = v_cache + slot * kv_row + kvh * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) acc[d] += static_cast<double>(p[j]) * vh[d];
      }
      float* o = out + (token * num_q_heads + head) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) o[d] = round_to(static_cast<float>(acc[d]), dtype);
    }
  }
}
