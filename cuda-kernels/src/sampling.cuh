// Sampling on the device: one block per sequence streams its logits row a few times (max and
// argmax, normaliser, radix selects for the top-k and top-p thresholds, the Gumbel draw) and
// writes 8 bytes back: the token id and its log-probability.
#pragma once

#include "common.cuh"

namespace kiln {

constexpr int kSampleThreads = 512;

struct SampleParams {
  const void* logits;          // [batch, vocab], row stride logits_stride
  int64_t logits_stride, vocab;
  const float* temperature;    // [batch] or nullptr (greedy)
  const int32_t* top_k;        // [batch] or nullptr
  const float* top_p;          // [batch] or nullptr
  const float* min_p;          // [batch] or nullptr
  const uint64_t* seeds;       // [batch]
  const int64_t* steps;        // [batch]
  int32_t* out_ids;            // [batch]
  float* out_logprobs;         // [batch] or nullptr
};

__device__ __forceinline__ float logit_at(const float* row, int64_t i) { return row[i]; }
__device__ __forceinline__ float logit_at(const __half* row, int64_t i) { return __half2float(row[i]); }
__device__ __forceinline__ float logit_at(const __nv_bfloat16* row, int64_t i) { return __bfloat162float(row[i]); }

// NaN logits count as -inf.
template <typename L>
__device__ __forceinline__ float clean_logit(const L* row, int64_t i) {
  const float v = logit_at(row, i);
  return v != v ? -INFINITY : v;
}

// Order-preserving map of floats to unsigned keys (larger float, larger key).
__device__ __forceinline__ uint32_t float_key(float v) {
  const uint32_t b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_float(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Philox-4x32-10 (Salmon et al., Random123), first output word.
__device__ __forceinline__ uint32_t philox_first(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                                 uint32_t k1) {
#pragma unroll
  for (int i = 0; i < 10; ++i) {
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// (value, index) argmax across the block, the lower index on ties; every thread gets it.
__device__ __forceinline__ void block_argmax(float& v, int64_t& idx, float* s_val, int64_t* s_idx) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
  __syncthreads();
  if (lane == 0) s_val[warp] = v, s_idx[warp] = idx;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? s_val[lane] : -INFINITY;
  idx = lane < warps ? s_idx[lane] : INT64_MAX;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
}

// ---- chunked argmax --------------------------------------------------------------------------
// Greedy rows split into chunks, one block each, so that a few rows of a large vocabulary still
// spread over the GPU: each block writes its chunk's (max, first index, sum of exp(logit - max)),
// and the last block of a row to finish (a counter in the workspace) combines them.

constexpr int kArgmaxThreads = 256;
constexpr int kArgmaxMaxChunks = 64;
constexpr int64_t kArgmaxMinChunk = 2048;  // NOTE: below this a chunk's launch outweighs its loads

struct ArgmaxParams {
  const void* logits;     // [batch, vocab], row stride logits_stride
  int64_t logits_stride, vocab, chunk_len;
  int chunks;             // per row
  int32_t* out_ids;       // [batch]
  float* out_logprobs;    // [batch] or nullptr
  float* part_max;        // [batch, chunks]
  float* part_sum;        // [batch, chunks] (with logprobs)
  int32_t* part_idx;      // [batch, chunks]
  uint32_t* counters;     // [batch], zero between calls
};

template <typename L>
__global__ void __launch_bounds__(kArgmaxThreads) argmax_chunk_kernel(const ArgmaxParams p) {
  __shared__ float s_val[32];
  __shared__ int64_t s_idx[32];
  __shared__ uint32_t s_flag;
  const int64_t b = blockIdx.y;
  const int c = blockIdx.x;
  const L* row = static_cast<const L*>(p.logits) + b * p.logits_stride;
  const int64_t begin = c * p.chunk_len;
  const int64_t end = min(p.vocab, begin + p.chunk_len);

  float best = -INFINITY;
  int64_t best_idx = INT64_MAX;
#pragma unroll 4
  for (int64_t i = begin + threadIdx.x; i < end; i += kArgmaxThreads) {
    const float v = clean_logit(row, i);
    if (v > best) best = v, best_idx = i;  // ascending i per thread: the first maximum stays
  }
  block_argmax(best, best_idx, s_val, s_idx);
  float sum = 0.0f;
  if (p.out_logprobs != nullptr && best != -INFINITY) {
    for (int64_t i = begin + threadIdx.x; i < end; i += kArgmaxThreads) sum += __expf(clean_logit(row, i) - best);
    sum = block_sum(sum, s_val);
  }
  const int64_t part = b * p.chunks + c;
  if (threadIdx.x == 0) {
    p.part_max[part] = best;
    p.part_idx[part] = best_idx >= p.vocab ? -1 : static_cast<int32_t>(best_idx);
    if (p.out_logprobs != nullptr) p.part_sum[part] = sum;
  }
  if (!arrive_last(&p.counters[b], static_cast<uint32_t>(p.chunks), &s_flag)) return;

  // The row's last block: combine the chunks (their results are read past L1).
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float m = -INFINITY;
    int64_t idx = INT64_MAX;
    for (int j = lane; j < p.chunks; j += 32) {
      const float v = __ldcg(&p.part_max[b * p.chunks + j]);
      const int32_t i = __ldcg(&p.part_idx[b * p.chunks + j]);
      const int64_t id = i < 0 ? INT64_MAX : i;
      if (v > m || (v == m && id < idx)) m = v, idx = id;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, m, o);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
      if (ov > m || (ov == m && oi < idx)) m = ov, idx = oi;
    }
    float z = 0.0f;
    if (p.out_logprobs != nullptr && m != -INFINITY) {
      for (int j = lane; j < p.chunks; j += 32) {
        const float v = __ldcg(&p.part_max[b * p.chunks + j]);
        if (v != -INFINITY) z += __ldcg(&p.part_sum[b * p.chunks + j]) * __expf(v - m);
      }
      z = warp_sum(z);
    }
    if (lane == 0) {
      p.out_ids[b] = idx >= p.vocab ? 0 : static_cast<int32_t>(idx);  // every logit -inf: token 0
      if (p.out_logprobs != nullptr) p.out_logprobs[b] = m == -INFINITY ? -logf(static_cast<float>(p.vocab)) : -logf(z);
    }
  }
}

// Picks the radix digit where the running total, taken from the largest digit down, reaches
// `remaining`; warp 0 scans the 256 bins. Returns the digit and leaves the total still needed
// inside that digit in *remaining (both through shared memory, valid after the caller's barrier).
template <typename C>
__device__ __forceinline__ void select_digit(const C* hist, C* remaining, uint32_t* digit) {
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x;
  const C need = *remaining;
  C mine = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) mine += hist[255 - 8 * lane - j];
  C inclusive = mine;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const C other = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += other;
  }
  const C exclusive = inclusive - mine;
  const bool crosses = exclusive < need && need <= inclusive;
  const unsigned ballot = __ballot_sync(0xffffffffu, crosses);
  if (ballot == 0) {  // rounding left the target unreached: keep everything (digit 0)
    if (lane == 0) *digit = 0;
    return;
  }
  if (lane == __ffs(ballot) - 1) {
    C cum = exclusive;
    for (int j = 0; j < 8; ++j) {
      const int b = 255 - 8 * lane - j;
      if (cum + hist[b] >= need || j == 7) {
        *digit = static_cast<uint32_t>(b);
        *remaining = need - cum;
        break;
      }
      cum += hist[b];
    }
  }
}

template <typename L>
__global__ void __launch_bounds__(kSampleThreads) sample_kernel(const SampleParams p) {
  __shared__ float s_val[32];
  __shared__ int64_t s_idx[32];
  __shared__ union {
    uint32_t count[256];
    float mass[256];
  } hist;
  __shared__ uint32_t s_digit;
  __shared__ uint32_t s_count_left;
  __shared__ float s_mass_left;

  const int64_t b = blockIdx.x;
  const L* row = static_cast<const L*>(p.logits) + b * p.logits_stride;
  const int64_t vocab = p.vocab;
  const int tid = threadIdx.x;

  float best = -INFINITY;
  int64_t best_idx = INT64_MAX;
  for (int64_t i = tid; i < vocab; i += blockDim.x) {
    const float v = clean_logit(row, i);
    if (v > best || (v == best && i < best_idx)) best = v, best_idx = i;
  }
  block_argmax(best, best_idx, s_val, s_idx);
  const float max_logit = best;
  if (best_idx >= vocab) best_idx = 0;  // every logit -inf: token 0

  const float temperature = p.temperature != nullptr ? p.temperature[b] : 0.0f;
  const bool greedy = !(temperature > 0.0f);
  const float inv_t = greedy ? 1.0f : 1.0f / temperature;
  const float shift = max_logit == -INFINITY ? 0.0f : max_logit;
  float z = 0.0f;
  for (int64_t i = tid; i < vocab; i += blockDim.x) z += __expf((clean_logit(row, i) - shift) * inv_t);
  z = block_sum(z, s_val);
  const float log_z = logf(z);

  if (greedy) {
    if (tid == 0) {
      p.out_ids[b] = static_cast<int32_t>(best_idx);
      if (p.out_logprobs) p.out_logprobs[b] = (max_logit - shift) - log_z;
    }
    return;
  }

  // Thresholds on the logit: a token is kept when logit >= threshold.
  float threshold = -INFINITY;
  const float min_p = p.min_p != nullptr ? p.min_p[b] : 0.0f;
  if (min_p > 0.0f) threshold = fmaxf(threshold, max_logit + temperature * logf(min_p));

  const int32_t top_k = p.top_k != nullptr ? p.top_k[b] : 0;
  if (top_k > 0 && top_k < vocab) {  // radix select of the k-th largest logit, 8 bits a pass
    uint32_t prefix = 0, mask = 0;
    if (tid == 0) s_count_left = static_cast<uint32_t>(top_k);
    for (int bit = 24; bit >= 0; bit -= 8) {
      for (int i = tid; i < 256; i += blockDim.x) hist.count[i] = 0;
      __syncthreads();
      for (int64_t i = tid; i < vocab; i += blockDim.x) {
        const uint32_t key = float_key(clean_logit(row, i));
        if ((key & mask) == prefix) atomicAdd(&hist.count[(key >> bit) & 255u], 1u);
      }
      __syncthreads();
      select_digit<uint32_t>(hist.count, &s_count_left, &s_digit);
      __syncthreads();
      prefix |= s_digit << bit;
      mask |= 255u << bit;
    }
    threshold = fmaxf(threshold, key_float(prefix));
  }

  const float top_p = p.top_p != nullptr ? p.top_p[b] : 1.0f;
  if (top_p < 1.0f) {  // radix select on probability mass among the tokens kept so far
    float kept = 0.0f;
    for (int64_t i = tid; i < vocab; i += blockDim.x) {
      const float v = clean_logit(row, i);
      if (v >= threshold) kept += __expf((v - shift) * inv_t);
    }
    kept = block_sum(kept, s_val);
    uint32_t prefix = 0, mask = 0;
    if (tid == 0) s_mass_left = fmaxf(top_p, 0.0f) * kept;
    for (int bit = 24; bit >= 0; bit -= 8) {
      for (int i = tid; i < 256; i += blockDim.x) hist.mass[i] = 0.0f;
      __syncthreads();
      for (int64_t i = tid; i < vocab; i += blockDim.x) {
        const float v = clean_logit(row, i);
        const uint32_t key = float_key(v);
        if (v >= threshold && (key & mask) == prefix) atomicAdd(&hist.mass[(key >> bit) & 255u], __expf((v - shift) * inv_t));
      }
      __syncthreads();
      select_digit<float>(hist.mass, &s_mass_left, &s_digit);
      __syncthreads();
      prefix |= s_digit << bit;
      mask |= 255u << bit;
    }
    threshold = fmaxf(threshold, key_float(prefix));
  }

  // Gumbel-max draw over the kept tokens.
  const uint64_t seed = p.seeds[b];
  const uint64_t step = static_cast<uint64_t>(p.steps[b]);
  float score = -INFINITY;
  int64_t pick = INT64_MAX;
  for (int64_t i = tid; i < vocab; i += blockDim.x) {
    const float v = clean_logit(row, i);
    if (!(v >= threshold) || v == -INFINITY) continue;
    const uint32_t bits = philox_first(static_cast<uint32_t>(i), 0u, static_cast<uint32_t>(step),
                                       static_cast<uint32_t>(step >> 32), static_cast<uint32_t>(seed),
                                       static_cast<uint32_t>(seed >> 32));
    const float u = (static_cast<float>(bits >> 8) + 0.5f) * (1.0f / 16777216.0f);
    const float s = (v - shift) * inv_t - logf(-logf(u));
    if (s > score || (s == score && i < pick)) score = s, pick = i;
  }
  block_argmax(score, pick, s_val, s_idx);
  if (tid == 0) {
    if (pick >= vocab) pick = best_idx;  // nothing finite: fall back to the argmax
    p.out_ids[b] = static_cast<int32_t>(pick);
    if (p.out_logprobs) p.out_logprobs[b] = (clean_logit(row, pick) - shift) * inv_t - log_z;
  }
}

template <typename L>
__global__ void apply_penalties_kernel(L* logits, int64_t stride, int64_t vocab, const int32_t* offsets,
                                       const int32_t* token_ids, const int32_t* counts, const float* repetition,
                                       const float* presence, const float* frequency) {
  const int64_t b = blockIdx.x;
  const float rep = repetition != nullptr ? repetition[b] : 1.0f;
  const float pres = presence != nullptr ? presence[b] : 0.0f;
  const float freq = frequency != nullptr ? frequency[b] : 0.0f;
  L* row = logits + b * stride;
  for (int64_t e = offsets[b] + static_cast<int64_t>(threadIdx.x); e < offsets[b + 1]; e += blockDim.x) {
    const int32_t tok = token_ids[e];
    if (tok < 0 || tok >= vocab) continue;
    const int32_t count = counts != nullptr ? counts[e] : 0;
    float x = logit_at(row, tok);
    x = x > 0.0f ? x / rep : x * rep;
    x -= pres * (count > 0 ? 1.0f : 0.0f) + freq * static_cast<float>(count);
    row[tok] = from_float<L>(x);
  }
}

}  // namespace kiln
