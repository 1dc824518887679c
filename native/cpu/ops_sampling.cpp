// Sampling on the CPU: the reference form of the contract in kiln_sampling.h (docs/sampling.md),
// written for clarity, row by row. The CUDA kernels reach the same integers by other passes.
// NOTE: compiled with -ffp-contract=off (native/CMakeLists.txt) so that no multiply-add is fused.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "kiln_sampling.h"

namespace kiln {
namespace {

namespace sm = ::kiln::sampling;

using RowParams = sm::SampleRow;

// One more occurrence in a penalty-table word; the count saturates rather than carry into the flags.
void count_token(uint32_t& entry) {
  if ((entry & KILN_PENALTY_COUNT_MASK) != KILN_PENALTY_COUNT_MASK) ++entry;
}

int32_t float_word(float f) {
  int32_t w;
  std::memcpy(&w, &f, sizeof w);
  return w;
}

// The checks every backend makes of a row, so that a bad word is an error, never a bad read.
int check_row(const RowParams& p, int64_t b, int64_t penalty_rows, bool have_logprobs_out) {
  const char* name = "kiln_cpu_sample";
  KILN_CHECK(p.temperature == 0.0f || (p.temperature > 0.0f && std::isfinite(sm::div(1.0f, p.temperature)) &&
                                         p.temperature <= sm::kMaxLogit),
             "%s: row %lld: temperature %g (0, or a float whose reciprocal is finite)", name, (long long)b,
             p.temperature);
  KILN_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "%s: row %lld: min_p %g outside [0, 1]", name, (long long)b,
             p.min_p);
  KILN_CHECK(p.penalty_row >= -1 && p.penalty_row < penalty_rows,
             "%s: row %lld: penalty row %d outside [-1, %lld)", name, (long long)b, p.penalty_row,
             (long long)penalty_rows);
  KILN_CHECK(p.penalty_row >= 0 || (p.flags & (KILN_SAMPLE_PENALIZE | KILN_SAMPLE_SUPPRESS)) == 0,
             "%s: row %lld: penalties or suppression without a penalty row", name, (long long)b);
  KILN_CHECK(p.logprobs >= -1 && p.logprobs <= KILN_SAMPLE_MAX_LOGPROBS, "%s: row %lld: logprobs %d", name,
             (long long)b, p.logprobs);
  KILN_CHECK(p.logprobs < 0 || have_logprobs_out, "%s: row %lld asks for logprobs without an output", name,
             (long long)b);
  KILN_CHECK(p.random53 >> 53 == 0, "%s: row %lld: more than 53 random bits", name, (long long)b);
  return KILN_OK;
}

constexpr int kRankDigitShift = 19;  // top-p's first pass groups rank keys by their top 12 bits
constexpr int kRankDigits = 1 << 12;

// The chosen id of one row.
int32_t sample_row(const float* logits, int64_t vocab, const RowParams& p, uint32_t* penalty_row) {
  std::vector<float> y(static_cast<size_t>(vocab));
  const int flags = penalty_row != nullptr ? p.flags : 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const uint32_t entry = penalty_row != nullptr ? penalty_row[i] : 0u;
    y[i] = sm::processed_logit(logits[i], entry, flags, p.repetition, p.presence, p.frequency);
  }
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (y[i] > y[best]) best = i;
  const float max_logit = y[best];
  if (!(p.temperature > 0.0f) || max_logit == sm::negative_infinity()) return static_cast<int32_t>(best);

  const float inv_t = sm::div(1.0f, p.temperature);
  std::vector<uint32_t> rank(static_cast<size_t>(vocab));
  std::vector<uint64_t> mass(static_cast<size_t>(vocab));
  std::vector<char> min_p_kept(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    const float d = sm::distance(max_logit, y[i], inv_t);
    const float w = sm::weight(d);
    rank[i] = sm::rank_key(d);
    mass[i] = sm::mass(w);
    min_p_kept[i] = !(p.min_p > 0.0f) || w >= p.min_p;
  }
  // Top-k: rank keys up to the k-th smallest among all tokens (its ties kept).
  uint32_t max_key = UINT32_MAX;
  if (p.top_k > 0 && p.top_k < vocab) {
    std::vector<uint32_t> keys(rank);
    std::nth_element(keys.begin(), keys.begin() + (p.top_k - 1), keys.end());
    max_key = keys[p.top_k - 1];
  }
  auto kept = [&](int64_t i) { return min_p_kept[i] && rank[i] <= max_key; };
  // Top-p: the most likely rank groups until their inclusive cumulative mass reaches the limit.
  if (p.top_p != 0) {
    std::vector<uint64_t> digit_mass(kRankDigits, 0);
    uint64_t total = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (!kept(i)) continue;
      digit_mass[rank[i] >> kRankDigitShift] += mass[i];
      total += mass[i];
    }
    const uint64_t limit = sm::top_p_limit(total, p.top_p);
    uint64_t before = 0;
    int digit = 0;
    while (digit < kRankDigits - 1 && before + digit_mass[digit] < limit) before += digit_mass[digit++];
    std::vector<int64_t> order;  // the tokens of the digit where the limit falls, by rank key
    for (int64_t i = 0; i < vocab; ++i)
      if (kept(i) && static_cast<int>(rank[i] >> kRankDigitShift) == digit) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rank[a] < rank[b]; });
    uint32_t cut = 0;
    for (size_t j = 0; j < order.size();) {
      const uint32_t key = rank[order[j]];
      uint64_t group = 0;
      for (; j < order.size() && rank[order[j]] == key; ++j) group += mass[order[j]];
      cut = key;
      if (before + group >= limit) break;
      before += group;
    }
    max_key = std::min(max_key, cut);
  }
  uint64_t kept_mass = 0;
  for (int64_t i = 0; i < vocab; ++i)
    if (kept(i)) kept_mass += mass[i];
  const uint64_t target = sm::draw_target(p.random53, kept_mass);
  uint64_t cumulative = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!kept(i)) continue;
    cumulative += mass[i];
    if (cumulative > target) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(best);  // unreachable: the most likely token holds 2^40 of the mass
}

// Log-probabilities of the raw logits (NaN as -inf) in double precision.
void row_logprobs(const float* logits, int64_t vocab, int32_t chosen, int top_n, int32_t* out) {
  double max = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) max = std::max(max, static_cast<double>(sm::clean(logits[i])));
  double sum = 0.0;
  if (max != -INFINITY)
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(sm::clean(logits[i])) - max);
  const double log_z = max == -INFINITY ? std::log(static_cast<double>(vocab)) : max + std::log(sum);
  auto logprob = [&](int64_t i) {
    const float x = sm::clean(logits[i]);
    return max == -INFINITY ? static_cast<float>(-log_z) : static_cast<float>(x - log_z);
  };
  const float chosen_logit = sm::clean(logits[chosen]);
  int32_t rank = 1;
  for (int64_t i = 0; i < vocab; ++i)
    if (sm::clean(logits[i]) > chosen_logit) ++rank;
  out[0] = float_word(logprob(chosen));
  out[1] = rank;
  const int n = static_cast<int>(std::min<int64_t>(top_n, vocab));
  if (n == 0) return;
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    const float xa = sm::clean(logits[a]), xb = sm::clean(logits[b]);
    return xa > xb || (xa == xb && a < b);
  });
  for (int j = 0; j < n; ++j) {
    out[2 + 2 * j] = ids[j];
    out[3 + 2 * j] = float_word(logprob(ids[j]));
  }
}

}  // namespace
}  // namespace kiln

extern "C" {

int kiln_cpu_sample(const float* logits, int64_t batch, int64_t vocab, const int32_t* rows, uint32_t* penalties,
                    int64_t penalty_rows, int32_t* out_ids, int32_t* out_logprobs) {
  using namespace kiln;
  KILN_CHECK_PTR(logits);
  KILN_CHECK_PTR(rows);
  KILN_CHECK_PTR(out_ids);
  KILN_CHECK(batch >= 0 && vocab > 0 && vocab <= KILN_SAMPLE_MAX_VOCAB && penalty_rows >= 0,
             "kiln_cpu_sample: bad sizes (batch %lld, vocab %lld, penalty rows %lld)", (long long)batch,
             (long long)vocab, (long long)penalty_rows);
  KILN_CHECK(penalties != nullptr || penalty_rows == 0, "kiln_cpu_sample: %lld penalty rows but no table",
             (long long)penalty_rows);
  std::vector<RowParams> params(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    params[b] = sm::decode_row(rows + b * KILN_SAMPLE_ROW_WORDS);
    const int status = check_row(params[b], b, penalty_rows, out_logprobs != nullptr);
    if (status != KILN_OK) return status;
  }
#pragma omp parallel for schedule(dynamic, 1) if (batch > 1) num_threads(kiln::op_threads())
  for (int64_t b = 0; b < batch; ++b) {
    const RowParams& p = params[b];
    uint32_t* table_row = p.penalty_row >= 0 ? penalties + p.penalty_row * vocab : nullptr;
    const float* row = logits + b * vocab;
    const int32_t id = sample_row(row, vocab, p, table_row);
    out_ids[b] = id;
    if (p.logprobs >= 0) row_logprobs(row, vocab, id, p.logprobs, out_logprobs + b * KILN_SAMPLE_LOGPROB_WORDS);
  }
  // Counted after every row is drawn, so no row reads a table row while another row's count changes
  // it (Java gives each row a table row of its own; this keeps a mistake there deterministic).
  for (int64_t b = 0; b < batch; ++b) {
    if (params[b].penalty_row >= 0) count_token(penalties[params[b].penalty_row * vocab + out_ids[b]]);
  }
  return KILN_OK;
}

int kiln_cpu_reset_penalty_row(uint32_t* penalties, int64_t penalty_rows, int64_t vocab, int64_t row,
                               const int32_t* tokens, int64_t num_prompt, int64_t num_output,
                               int64_t num_suppressed) {
  KILN_CHECK_PTR(penalties);
  KILN_CHECK(vocab > 0 && row >= 0 && row < penalty_rows && num_prompt >= 0 && num_output >= 0 &&
                 num_suppressed >= 0,
             "kiln_cpu_reset_penalty_row: bad sizes (row %lld of %lld, %lld + %lld + %lld ids)", (long long)row,
             (long long)penalty_rows, (long long)num_prompt, (long long)num_output, (long long)num_suppressed);
  const int64_t n = num_prompt + num_output + num_suppressed;
  KILN_CHECK(n == 0 || tokens != nullptr, "kiln_cpu_reset_penalty_row: tokens is NULL");
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return kiln::fail(KILN_ERR_OUT_OF_RANGE, "kiln_cpu_reset_penalty_row: id %d at %lld outside [0, %lld)",
                        tokens[i], (long long)i, (long long)vocab);
  uint32_t* out = penalties + row * vocab;
  std::memset(out, 0, static_cast<size_t>(vocab) * sizeof(uint32_t));
  for (int64_t i = 0; i < num_prompt; ++i) out[tokens[i]] |= KILN_PENALTY_IN_PROMPT;
  for (int64_t i = num_prompt; i < num_prompt + num_output; ++i) kiln::count_token(out[tokens[i]]);
  for (int64_t i = num_prompt + num_output; i < n; ++i) out[tokens[i]] |= KILN_PENALTY_SUPPRESSED;
  return KILN_OK;
}

}  // extern "C"
