// Causal attention over the paged KV cache on the CPU (prefill and decode in one op).
//
// One task per (query row, KV head), for the q heads that share that KV head: scores against every
// visible position read through the block table, a max-subtracted softmax in fp32, then the
// weighted sum of V; each K and V row is read once for the whole group.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace {

// The cache's elements: fp32, or e4m3 codes whose values are e4m3_value(code) * the scale of
// their (slot, KV head) row.
struct CacheView {
  const void* k;  // this KV head's first element in slot 0
  const void* v;
  const float* k_scales;  // e4m3: this KV head's scale in slot 0, slots num_kv_heads apart
  const float* v_scales;
  int64_t scale_stride;
  bool e4m3;
};

// One cached row of head_dim elements as fp32: the row itself, or its e4m3 codes decoded into row.
inline const float* cached_row(const void* cache, bool e4m3, int64_t offset, int64_t head_dim, float* row) {
  if (!e4m3) return static_cast<const float*>(cache) + offset;
  const uint8_t* codes = static_cast<const uint8_t*>(cache) + offset;
  const float* values = kiln::e4m3_values();
  for (int64_t d = 0; d < head_dim; ++d) row[d] = values[codes[d]];
  return row;
}

// Attention of the group q heads that share one KV head, for one query row: each K and V row is
// read (and decoded) once for all of them. q and out: [group][head_dim] (consecutive heads);
// cache slots are kv_row elements apart. An FP8 cache's row scales are applied to the row's score
// (K) and to its weight (V).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void attend_group(float* out, const float* q, const CacheView& cache, int64_t kv_row,
                  const int32_t* table, int64_t block_size, int64_t visible, int64_t group, int64_t head_dim,
                  float scale, float* scores /* [group][visible] */, float* inverses /* [group] */,
                  float* acc /* [group][head_dim] */, float* row /* [head_dim] */) {
  for (int64_t p = 0; p < visible; ++p) {
    const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
    const float* kh = cached_row(cache.k, cache.e4m3, slot * kv_row, head_dim, row);
    const float score_scale = cache.e4m3 ? scale * cache.k_scales[slot * cache.scale_stride] : scale;
    for (int64_t g = 0; g < group; ++g) {
      const float* qh = q + g * head_dim;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < head_dim; ++d) dot += qh[d] * kh[d];
      scores[g * visible + p] = dot * score_scale;
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    float* row = scores + g * visible;
    float max_score = -INFINITY;
    for (int64_t p = 0; p < visible; ++p) max_score = row[p] > max_score ? row[p] : max_score;
    float denominator = 0.0f;
    for (int64_t p = 0; p < visible; ++p) {
      row[p] = std::exp(row[p] - max_score);
      denominator += row[p];
    }
    inverses[g] = 1.0f / denominator;
  }
  std::fill(acc, acc + group * head_dim, 0.0f);
  for (int64_t p = 0; p < visible; ++p) {
    const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
    const float* vh = cached_row(cache.v, cache.e4m3, slot * kv_row, head_dim, row);
    const float v_scale = cache.e4m3 ? cache.v_scales[slot * cache.scale_stride] : 1.0f;
    for (int64_t g = 0; g < group; ++g) {
      const float weight = scores[g * visible + p] * v_scale;
      float* a = acc + g * head_dim;
#pragma omp simd
      for (int64_t d = 0; d < head_dim; ++d) a[d] += weight * vh[d];
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t d = 0; d < head_dim; ++d) out[g * head_dim + d] = acc[g * head_dim + d] * inverses[g];
  }
}

int attention(float* out, int64_t out_stride, const float* q, int64_t q_stride, const void* k_cache,
              const void* v_cache, bool e4m3, const float* k_scales, const float* v_scales, const int32_t* block_tables,
              int64_t max_blocks_per_seq, const int32_t* query_start, const int32_t* seq_lens, int64_t num_seqs,
              int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim, int64_t block_size,
              int64_t num_blocks, float scale) {
  KILN_CHECK_PTR(out);
  KILN_CHECK_PTR(q);
  KILN_CHECK_PTR(k_cache);
  KILN_CHECK_PTR(v_cache);
  KILN_CHECK_PTR(block_tables);
  KILN_CHECK_PTR(query_start);
  KILN_CHECK_PTR(seq_lens);
  KILN_CHECK(num_q_heads > 0 && num_kv_heads > 0 && num_q_heads % num_kv_heads == 0,
             "kiln_cpu_attention: %lld q heads are not a multiple of %lld kv heads",
             (long long)num_q_heads, (long long)num_kv_heads);
  KILN_CHECK(head_dim > 0 && block_size > 0 && num_blocks > 0 && max_blocks_per_seq > 0,
             "kiln_cpu_attention: bad sizes");
  KILN_CHECK(q_stride >= num_q_heads * head_dim && out_stride >= num_q_heads * head_dim,
             "kiln_cpu_attention: a row stride is too small");
  // Validate the whole plan before touching memory.
  if (query_start[0] != 0 || query_start[num_seqs] != num_tokens) {
    return kiln::fail(KILN_ERR_OUT_OF_RANGE, "query_start must run from 0 to num_tokens=%lld",
                      (long long)num_tokens);
  }
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t query_len = query_start[s + 1] - query_start[s];
    const int64_t seq_len = seq_lens[s];
    if (query_len < 0 || query_len > seq_len || seq_len > max_blocks_per_seq * block_size) {
      return kiln::fail(KILN_ERR_OUT_OF_RANGE,
                        "sequence %lld: query length %lld and context length %lld do not fit "
                        "(at most %lld blocks of %lld)",
                        (long long)s, (long long)query_len, (long long)seq_len,
                        (long long)max_blocks_per_seq, (long long)block_size);
    }
    const int64_t used_blocks = (seq_len + block_size - 1) / block_size;
    for (int64_t b = 0; b < used_blocks; ++b) {
      const int32_t block = block_tables[s * max_blocks_per_seq + b];
      if (block < 0 || block >= num_blocks) {
        return kiln::fail(KILN_ERR_OUT_OF_RANGE, "sequence %lld: block table entry %lld is %d, outside [0, %lld)",
                          (long long)s, (long long)b, block, (long long)num_blocks);
      }
    }
  }

  const int64_t group = num_q_heads / num_kv_heads;
  const int64_t kv_row = num_kv_heads * head_dim;  // elements per slot
  // One work item per (token, kv head); each finds its sequence by binary search.
  const int64_t items = num_tokens * num_kv_heads;
#pragma omp parallel num_threads(kiln::op_threads())
  {
    std::vector<float> scores;  // [group][visible] exponentials, then [group] reciprocal sums
    std::vector<float> acc(static_cast<size_t>(group * head_dim));  // [group][head_dim]
    std::vector<float> row(static_cast<size_t>(head_dim));          // a decoded e4m3 row
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t token = item / num_kv_heads;
      const int64_t kv_head = item % num_kv_heads;
      int64_t lo = 0, hi = num_seqs - 1;
      while (lo < hi) {  // last sequence whose query_start <= token
        const int64_t mid = (lo + hi + 1) / 2;
        if (query_start[mid] <= token) lo = mid; else hi = mid - 1;
      }
      const int64_t seq = lo;
      const int64_t query_len = query_start[seq + 1] - query_start[seq];
      const int64_t position = seq_lens[seq] - query_len + (token - query_start[seq]);
      const int64_t visible = position + 1;
      scores.resize(static_cast<size_t>(group * (visible + 1)));
      const size_t element = e4m3 ? 1 : sizeof(float);
      const CacheView view{static_cast<const char*>(k_cache) + kv_head * head_dim * element,
                           static_cast<const char*>(v_cache) + kv_head * head_dim * element,
                           e4m3 ? k_scales + kv_head : nullptr, e4m3 ? v_scales + kv_head : nullptr, num_kv_heads,
                           e4m3};
      attend_group(out + token * out_stride + kv_head * group * head_dim,
                   q + token * q_stride + kv_head * group * head_dim, view, kv_row,
                   block_tables + seq * max_blocks_per_seq, block_size, visible, group, head_dim, scale,
                   scores.data(), scores.data() + group * visible, acc.data(), row.data());
    }
  }
  return KILN_OK;
}

}  // namespace

extern "C" int kiln_cpu_attention(float* out, int64_t out_stride, const float* q,
                                  int64_t q_stride, const float* k_cache, const float* v_cache,
                                  const int32_t* block_tables, int64_t max_blocks_per_seq,
                                  const int32_t* query_start, const int32_t* seq_lens,
                                  int64_t num_seqs, int64_t num_tokens, int64_t num_q_heads,
                                  int64_t num_kv_heads, int64_t head_dim, int64_t block_size,
                                  int64_t num_blocks, float scale) {
  return attention(out, out_stride, q, q_stride, k_cache, v_cache, false, nullptr, nullptr, block_tables,
                   max_blocks_per_seq, query_start, seq_lens, num_seqs, num_tokens, num_q_heads, num_kv_heads,
                   head_dim, block_size, num_blocks, scale);
}

extern "C" int kiln_cpu_attention_e4m3(float* out, int64_t out_stride, const float* q, int64_t q_stride,
                                       const uint8_t* k_cache, const uint8_t* v_cache, const float* k_scales,
                                       const float* v_scales, const int32_t* block_tables,
                                       int64_t max_blocks_per_seq, const int32_t* query_start,
                                       const int32_t* seq_lens, int64_t num_seqs, int64_t num_tokens,
                                       int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                                       int64_t block_size, int64_t num_blocks, float scale) {
  KILN_CHECK_PTR(k_scales);
  KILN_CHECK_PTR(v_scales);
  return attention(out, out_stride, q, q_stride, k_cache, v_cache, true, k_scales, v_scales, block_tables,
                   max_blocks_per_seq, query_start, seq_lens, num_seqs, num_tokens, num_q_heads, num_kv_heads,
                   head_dim, block_size, num_blocks, scale);
}
