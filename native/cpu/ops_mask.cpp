// Token masks of structured output (the ids a row's grammar forbids get -inf logits, so that
// argmax and sampling alike give them probability 0) and logit bias (docs/sampling.md).

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common.h"
#include "kiln_cpu.h"

extern "C" {

int kiln_cpu_mask_logits(float* logits, int64_t batch, int64_t vocab, const int32_t* masks, const int32_t* rows,
                         int64_t num_rows) {
  KILN_CHECK(batch >= 0 && vocab > 0 && num_rows >= 0, "kiln_cpu_mask_logits: bad sizes (batch %lld, vocab %lld, %lld rows)",
             (long long)batch, (long long)vocab, (long long)num_rows);
  if (num_rows == 0) return KILN_OK;
  KILN_CHECK_PTR(logits);
  KILN_CHECK_PTR(masks);
  KILN_CHECK_PTR(rows);
  for (int64_t m = 0; m < num_rows; ++m)
    if (rows[m] < 0 || rows[m] >= batch)
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "kiln_cpu_mask_logits: row %d at %lld outside [0, %lld)", rows[m],
                        (long long)m, (long long)batch);
  const int64_t words = (vocab + 31) / 32;
  const float neg_inf = -INFINITY;
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < num_rows; ++m) {
    float* row = logits + static_cast<int64_t>(rows[m]) * vocab;
    const uint32_t* mask = reinterpret_cast<const uint32_t*>(masks) + m * words;
    for (int64_t v = 0; v < vocab; ++v)
      if (((mask[v >> 5] >> (v & 31)) & 1u) == 0) row[v] = neg_inf;
  }
  return KILN_OK;
}

int kiln_cpu_add_logit_bias(float* logits, int64_t batch, int64_t vocab, const int32_t* entries, int64_t count) {
  KILN_CHECK(batch >= 0 && vocab > 0 && count >= 0, "kiln_cpu_add_logit_bias: bad sizes (batch %lld, vocab %lld, %lld entries)",
             (long long)batch, (long long)vocab, (long long)count);
  if (count == 0) return KILN_OK;
  KILN_CHECK_PTR(logits);
  KILN_CHECK_PTR(entries);
  for (int64_t k = 0; k < count; ++k) {
    const int32_t row = entries[3 * k], id = entries[3 * k + 1];
    if (row < 0 || row >= batch || id < 0 || id >= vocab)
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "kiln_cpu_add_logit_bias: entry %lld (row %d, id %d) outside [0, %lld) x [0, %lld)",
                        (long long)k, row, id, (long long)batch, (long long)vocab);
  }
  for (int64_t k = 0; k < count; ++k) {
    float bias;
    std::memcpy(&bias, &entries[3 * k + 2], sizeof bias);
    logits[static_cast<int64_t>(entries[3 * k]) * vocab + entries[3 * k + 1]] += bias;
  }
  return KILN_OK;
}

}  // extern "C"
