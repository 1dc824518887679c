// The sampling contract shared by the CPU backend (native/cpu/ops_sampling.cpp) and the CUDA
// kernels (cuda-kernels/src/sampling.cuh); docs/sampling.md states it in words.
//
// A draw is decided by integer arithmetic and by a few IEEE single-precision operations written
// once here (each rounded on its own: no fused multiply-add, no library exp), so the two
// backends choose the same token from the same logits, whatever the batch and the reduction
// order.
#ifndef KILN_SAMPLING_H
#define KILN_SAMPLING_H

#include <stdint.h>

// The largest vocabulary: a token's mass is at most 2^40, so 2^23 of them sum below 2^64.
#define KILN_SAMPLE_MAX_VOCAB (1 << 23)

// ---- a row's parameters: KILN_SAMPLE_ROW_WORDS int32 words, written by Java ------------------
#define KILN_SAMPLE_ROW_WORDS 12
#define KILN_SAMPLE_TEMPERATURE 0  // float bits; 0: greedy (the first argmax of the processed logits)
#define KILN_SAMPLE_TOP_K 1        // int; <= 0 or >= vocab: off
#define KILN_SAMPLE_TOP_P 2        // uint32 fraction of 2^32; 0: off
#define KILN_SAMPLE_MIN_P 3        // float bits; 0: off
#define KILN_SAMPLE_REPETITION 4   // float bits
#define KILN_SAMPLE_PRESENCE 5     // float bits
#define KILN_SAMPLE_FREQUENCY 6    // float bits
#define KILN_SAMPLE_PENALTY_ROW 7  // row of the penalty table, or -1: none
#define KILN_SAMPLE_FLAGS 8        // KILN_SAMPLE_PENALIZE | KILN_SAMPLE_SUPPRESS
#define KILN_SAMPLE_LOGPROBS 9     // -1: none; else how many top alternatives (0 ..= KILN_SAMPLE_MAX_LOGPROBS)
#define KILN_SAMPLE_RANDOM_LO 10   // R, the draw's 53 random bits: low 32 bits
#define KILN_SAMPLE_RANDOM_HI 11   // R: high 21 bits

#define KILN_SAMPLE_PENALIZE 1     // apply the repetition, presence and frequency penalties
#define KILN_SAMPLE_SUPPRESS 2     // mask the penalty row's suppressed ids (min_tokens not reached)

// ---- a penalty table row: one uint32 per vocabulary id --------------------------------------
#define KILN_PENALTY_COUNT_MASK 0x3fffffffu  // occurrences in the output
#define KILN_PENALTY_IN_PROMPT 0x40000000u   // the id occurs in the prompt
#define KILN_PENALTY_SUPPRESSED 0x80000000u  // an end-of-sequence or stop id

// ---- a row's log-probabilities: KILN_SAMPLE_LOGPROB_WORDS int32 words ------------------------
#define KILN_SAMPLE_MAX_LOGPROBS 20
// [0] the chosen token's log-probability (float bits), [1] its rank, then per alternative j:
// [2 + 2j] its id, [3 + 2j] its log-probability (float bits), the most likely first.
#define KILN_SAMPLE_LOGPROB_WORDS (2 + 2 * KILN_SAMPLE_MAX_LOGPROBS)

#ifdef __cplusplus

#ifdef __CUDACC__
#define KILN_SAMPLING_FN __host__ __device__ __forceinline__
#else
#define KILN_SAMPLING_FN inline
#endif

namespace kiln {
namespace sampling {

// Single-precision operations rounded one by one. NOTE: nvcc fuses a * b + c into one FMA unless
// told not to, and a fused result differs from the CPU's in the last bit; the CPU side is
// compiled with -ffp-contract=off for the same reason.
KILN_SAMPLING_FN float mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
KILN_SAMPLING_FN float add(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
KILN_SAMPLING_FN float sub(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
KILN_SAMPLING_FN float div(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
KILN_SAMPLING_FN float bits_float(uint32_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
#endif
}
KILN_SAMPLING_FN float round_even(float x) {
#ifdef __CUDA_ARCH__
  return rintf(x);
#else
  return __builtin_rintf(x);
#endif
}

constexpr float kMaxLogit = 3.40282347e38f;

KILN_SAMPLING_FN float negative_infinity() { return bits_float(0xff800000u); }

// One row's parameters, as its KILN_SAMPLE_ROW_WORDS words carry them.
struct SampleRow {
  float temperature;
  int32_t top_k;
  uint32_t top_p;  // fraction of 2^32; 0: off
  float min_p, repetition, presence, frequency;
  int32_t penalty_row, flags, logprobs;
  uint64_t random53;  // the words' 64 bits; a valid row uses the low 53 only
};

KILN_SAMPLING_FN SampleRow decode_row(const int32_t* w) {
  SampleRow r;
  r.temperature = bits_float(static_cast<uint32_t>(w[KILN_SAMPLE_TEMPERATURE]));
  r.top_k = w[KILN_SAMPLE_TOP_K];
  r.top_p = static_cast<uint32_t>(w[KILN_SAMPLE_TOP_P]);
  r.min_p = bits_float(static_cast<uint32_t>(w[KILN_SAMPLE_MIN_P]));
  r.repetition = bits_float(static_cast<uint32_t>(w[KILN_SAMPLE_REPETITION]));
  r.presence = bits_float(static_cast<uint32_t>(w[KILN_SAMPLE_PRESENCE]));
  r.frequency = bits_float(static_cast<uint32_t>(w[KILN_SAMPLE_FREQUENCY]));
  r.penalty_row = w[KILN_SAMPLE_PENALTY_ROW];
  r.flags = w[KILN_SAMPLE_FLAGS];
  r.logprobs = w[KILN_SAMPLE_LOGPROBS];
  r.random53 = static_cast<uint64_t>(static_cast<uint32_t>(w[KILN_SAMPLE_RANDOM_HI])) << 32 |
               static_cast<uint32_t>(w[KILN_SAMPLE_RANDOM_LO]);
  return r;
}

// NaN counts as -inf and +inf as the largest float, so every later difference is defined.
KILN_SAMPLING_FN float clean(float v) {
  if (v != v) return negative_infinity();
  return v > kMaxLogit ? kMaxLogit : v;
}

// The logit after the penalties and the min-tokens mask; entry is the id's penalty-table word.
KILN_SAMPLING_FN float processed_logit(float logit, uint32_t entry, int flags, float repetition, float presence,
                                       float frequency) {
  float y = clean(logit);
  if ((flags & KILN_SAMPLE_SUPPRESS) && (entry & KILN_PENALTY_SUPPRESSED)) return negative_infinity();
  if (flags & KILN_SAMPLE_PENALIZE) {
    const uint32_t count = entry & KILN_PENALTY_COUNT_MASK;
    if (count > 0 || (entry & KILN_PENALTY_IN_PROMPT)) y = y > 0.0f ? div(y, repetition) : mul(y, repetition);
    if (count > 0) y = sub(sub(y, mul(frequency, static_cast<float>(count))), presence);
    y = clean(y);
  }
  return y;
}

// exp(x) for x <= 0 (Cephes' expf: Cody-Waite reduction by ln 2, a degree-5 polynomial), from
// single roundings only; 0 below -87.
KILN_SAMPLING_FN float exp_nonpositive(float x) {
  if (!(x >= -87.0f)) return 0.0f;
  const float n = round_even(mul(x, 1.44269504088896341f));
  float r = sub(x, mul(n, 0.693359375f));
  r = sub(r, mul(n, -2.12194440e-4f));
  const float z = mul(r, r);
  float p = 1.9875691500e-4f;
  p = add(mul(p, r), 1.3981999507e-3f);
  p = add(mul(p, r), 8.3334519073e-3f);
  p = add(mul(p, r), 4.1665795894e-2f);
  p = add(mul(p, r), 1.6666665459e-1f);
  p = add(mul(p, r), 5.0000001201e-1f);
  p = add(add(mul(p, z), r), 1.0f);
  const int e = static_cast<int>(n);  // in [-126, 0]
  return mul(p, bits_float(static_cast<uint32_t>(e + 127) << 23));
}

// A token's distance below the most likely one in temperature units, d = (max - y) / T, and the
// two integers the draw uses: its rank key q = d in fixed point (2^-26 units, saturating at 2^31 - 1;
// ties in q are ties for top-k and top-p) and its mass W = exp(-d) in 2^-40 units (0 when smaller).
constexpr float kRankScale = 67108864.0f;         // 2^26
constexpr float kRankSaturation = 2147483648.0f;  // 2^31
constexpr float kMassScale = 1099511627776.0f;    // 2^40
constexpr uint32_t kRankMax = 0x7fffffffu;        // every key below 2^31, so three digits of 12 + 10 + 9 bits hold it

KILN_SAMPLING_FN float distance(float max_logit, float y, float inv_temperature) {
  return mul(sub(max_logit, y), inv_temperature);
}

KILN_SAMPLING_FN uint32_t rank_key(float d) {
  float scaled = mul(d, kRankScale);
  if (!(scaled < kRankSaturation)) return kRankMax;
#ifdef __CUDA_ARCH__
  return __float2uint_rz(scaled);
#else
  return static_cast<uint32_t>(scaled);
#endif
}

KILN_SAMPLING_FN float weight(float d) { return exp_nonpositive(-d); }

KILN_SAMPLING_FN uint64_t mass(float w) {
#ifdef __CUDA_ARCH__
  return __float2ull_rz(mul(w, kMassScale));
#else
  return static_cast<uint64_t>(mul(w, kMassScale));
#endif
}

// floor(a * b / 2^shift) exactly, for a * b < 2^128.
KILN_SAMPLING_FN uint64_t mul_shift(uint64_t a, uint64_t b, int shift) {
#ifdef __CUDA_ARCH__
  const uint64_t lo = a * b, hi = __umul64hi(a, b);
  return shift == 0 ? lo : (lo >> shift) | (hi << (64 - shift));
#else
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product >> shift);
#endif
}

// The top-p cut: the tokens kept are those of the most likely rank groups whose inclusive
// cumulative mass first reaches this limit (at least 1, so the most likely group always stays).
KILN_SAMPLING_FN uint64_t top_p_limit(uint64_t total_mass, uint32_t top_p_fraction) {
  const uint64_t limit = mul_shift(total_mass, top_p_fraction, 32);
  return limit > 0 ? limit : 1;
}

// The draw's target: the chosen token is the first in id order whose inclusive cumulative kept
// mass exceeds floor(R * K / 2^53), R the row's 53 random bits and K the kept mass.
KILN_SAMPLING_FN uint64_t draw_target(uint64_t random53, uint64_t kept_mass) {
  return mul_shift(random53, kept_mass, 53);
}

}  // namespace sampling
}  // namespace kiln

#endif  // __cplusplus

#endif  // KILN_SAMPLING_H
