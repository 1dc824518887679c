// Sampling on the device: the greedy argmax (a row split over several blocks), and the sampler of
// the contract in kiln_sampling.h (one block per row), which writes back only the chosen ids and
// the log-probabilities asked for.
#pragma once

#include "common.cuh"
#include "kiln_sampling.h"

namespace kiln {

__device__ __forceinline__ float logit_at(const float* row, int64_t i) { return row[i]; }
__device__ __forceinline__ float logit_at(const __half* row, int64_t i) { return __half2float(row[i]); }
__device__ __forceinline__ float logit_at(const __nv_bfloat16* row, int64_t i) { return __bfloat162float(row[i]); }

// NaN logits count as -inf.
template <typename L>
__device__ __forceinline__ float clean_logit(const L* row, int64_t i) {
  const float v = logit_at(row, i);
  return v != v ? -INFINITY : v;
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

// ---- the sampler ---------------------------------------------------------------------------
// One block per row reaches the integers of the contract in kiln_sampling.h by passes over the
// row (the logits stay in L2 or HBM; each pass recomputes a token's processed logit, distance,
// rank key and mass from them):
//   1. the processed logits' maximum and first argmax (greedy rows end here);
//   2. top-k: a radix select of the k-th smallest rank key by token counts, 12 + 10 + 9 bits;
//   3. top-p: a radix select of the cut by mass among the tokens kept so far (the first pass's
//      histogram also gives their total, hence the limit); the first digit's bins are 1/128 of a
//      temperature unit wide, so that tokens spread over them and shared atomics rarely collide;
//   4. the kept mass of 1,024 consecutive chunks of ids; the draw's target falls in one of them,
//      which one warp then scans in id order.
// Every sum is of integers, so the order of the atomics and reductions changes nothing.

constexpr int kSampleThreads = 1024;
constexpr int kSampleChunks = 1024;
constexpr int kRankBins = 4096;  // the widest digit: 12 bits

namespace sm = ::kiln::sampling;

struct SampleArgs {
  const float* logits;       // [batch, vocab]
  int64_t vocab;
  const int32_t* rows;       // [batch, KILN_SAMPLE_ROW_WORDS]
  uint32_t* penalties;       // [penalty_rows, vocab] or nullptr
  int64_t penalty_rows;
  int32_t* out_ids;          // [batch]
  int32_t* out_logprobs;     // [batch, KILN_SAMPLE_LOGPROB_WORDS] or nullptr
};

struct SampleRow {
  float temperature, min_p, repetition, presence, frequency;
  int32_t top_k, penalty_row, flags, logprobs;
  uint32_t top_p;
  uint64_t random53;
};

__device__ __forceinline__ SampleRow load_sample_row(const int32_t* w, const SampleArgs& a) {
  SampleRow r;
  r.temperature = __int_as_float(w[KILN_SAMPLE_TEMPERATURE]);
  r.top_k = w[KILN_SAMPLE_TOP_K];
  r.top_p = static_cast<uint32_t>(w[KILN_SAMPLE_TOP_P]);
  r.min_p = __int_as_float(w[KILN_SAMPLE_MIN_P]);
  r.repetition = __int_as_float(w[KILN_SAMPLE_REPETITION]);
  r.presence = __int_as_float(w[KILN_SAMPLE_PRESENCE]);
  r.frequency = __int_as_float(w[KILN_SAMPLE_FREQUENCY]);
  r.penalty_row = w[KILN_SAMPLE_PENALTY_ROW];
  r.flags = w[KILN_SAMPLE_FLAGS];
  r.logprobs = w[KILN_SAMPLE_LOGPROBS];
  r.random53 = (static_cast<uint64_t>(static_cast<uint32_t>(w[KILN_SAMPLE_RANDOM_HI])) << 32 |
                static_cast<uint32_t>(w[KILN_SAMPLE_RANDOM_LO])) & ((1ull << 53) - 1);
  // NOTE: the rows are device memory the launcher cannot read: a row naming no valid table row
  // samples without one rather than reading past the table.
  if (a.penalties == nullptr || r.penalty_row < 0 || r.penalty_row >= a.penalty_rows) r.penalty_row = -1;
  if (r.logprobs > KILN_SAMPLE_MAX_LOGPROBS) r.logprobs = KILN_SAMPLE_MAX_LOGPROBS;
  return r;
}

// One token as the row's passes see it.
struct SampleView {
  const float* row;
  const uint32_t* table;  // the row's penalty-table row or nullptr
  SampleRow p;
  float max_logit, inv_t;

  __device__ __forceinline__ float logit(int64_t i) const {
    if (table == nullptr) return sm::clean(row[i]);
    return sm::processed_logit(row[i], table[i], p.flags, p.repetition, p.presence, p.frequency);
  }
  // The token's rank key and mass, and whether min-p keeps it.
  __device__ __forceinline__ void rank_mass(int64_t i, uint32_t& rank, uint64_t& mass, bool& min_p_kept) const {
    const float d = sm::distance(max_logit, logit(i), inv_t);
    const float w = sm::weight(d);
    rank = sm::rank_key(d);
    mass = sm::mass(w);
    min_p_kept = !(p.min_p > 0.0f) || w >= p.min_p;
  }
};

__device__ __forceinline__ uint64_t warp_sum_u64(uint64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Warp 0 finds the digit where the cumulative count or mass over bins [0, bins), ascending,
// reaches *need: *digit gets it and *need what is still needed inside it. Lane l owns bins
// [l * bins / 32, (l + 1) * bins / 32).
template <typename C>
__device__ __forceinline__ void select_ascending(const C* hist, int bins, C* need, uint32_t* digit) {
  const int lane = threadIdx.x;
  const int per = bins / 32;
  C mine = 0;
  for (int j = 0; j < per; ++j) mine += hist[lane * per + j];
  C inclusive = mine;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const C other = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += other;
  }
  const C exclusive = inclusive - mine;
  const C target = *need;
  const unsigned crossing = __ballot_sync(0xffffffffu, exclusive < target && target <= inclusive);
  __syncwarp();
  if (crossing == 0) {  // cannot happen for a need within the total; keep everything
    if (lane == 0) *digit = static_cast<uint32_t>(bins - 1);
    return;
  }
  if (lane == __ffs(crossing) - 1) {
    C cum = exclusive;
    for (int j = 0; j < per; ++j) {
      const C h = hist[lane * per + j];
      if (cum + h >= target || j == per - 1) {
        *digit = static_cast<uint32_t>(lane * per + j);
        *need = target - cum;
        break;
      }
      cum += h;
    }
  }
}

// The rank key's three digits: bits [19, 31), [9, 19), [0, 9).
__device__ __forceinline__ int rank_digit_shift(int level) { return level == 0 ? 19 : level == 1 ? 9 : 0; }
__device__ __forceinline__ int rank_digit_bits(int level) { return level == 0 ? 12 : level == 1 ? 10 : 9; }

__global__ void __launch_bounds__(kSampleThreads) sample_rows_kernel(const SampleArgs a) {
  __shared__ union {
    uint32_t count[kRankBins];
    unsigned long long mass[kRankBins];
  } hist;
  __shared__ unsigned long long chunk_mass[kSampleChunks];
  __shared__ float s_val[32];
  __shared__ int64_t s_idx[32];
  __shared__ unsigned long long s_need;
  __shared__ uint32_t s_count_need;
  __shared__ uint32_t s_digit;
  __shared__ int64_t s_pick;

  const int64_t b = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t vocab = a.vocab;
  SampleView v;
  v.p = load_sample_row(a.rows + b * KILN_SAMPLE_ROW_WORDS, a);
  v.row = a.logits + b * vocab;
  v.table = v.p.penalty_row >= 0 ? a.penalties + static_cast<int64_t>(v.p.penalty_row) * vocab : nullptr;

  float best = sm::negative_infinity();
  int64_t best_idx = INT64_MAX;
  for (int64_t i = tid; i < vocab; i += kSampleThreads) {
    const float y = v.logit(i);
    if (y > best) best = y, best_idx = i;  // ascending i per thread: the first maximum stays
  }
  block_argmax(best, best_idx, s_val, s_idx);
  int64_t pick = best_idx >= vocab ? 0 : best_idx;  // every logit -inf: token 0
  v.max_logit = best;

  if (v.p.temperature > 0.0f && best != sm::negative_infinity()) {
    v.inv_t = sm::div(1.0f, v.p.temperature);
    uint32_t max_key = UINT32_MAX;
    // Top-k: the k-th smallest rank key among all tokens.
    if (v.p.top_k > 0 && v.p.top_k < vocab) {
      uint32_t prefix = 0, resolved = 0;
      if (tid == 0) s_count_need = static_cast<uint32_t>(v.p.top_k);
      for (int level = 0; level < 3; ++level) {
        const int bins = 1 << rank_digit_bits(level), shift = rank_digit_shift(level);
        for (int j = tid; j < bins; j += kSampleThreads) hist.count[j] = 0;
        __syncthreads();
        for (int64_t i = tid; i < vocab; i += kSampleThreads) {
          const uint32_t r = sm::rank_key(sm::distance(v.max_logit, v.logit(i), v.inv_t));
          if ((r & resolved) == prefix) atomicAdd(&hist.count[(r >> shift) & (bins - 1)], 1u);
        }
        __syncthreads();
        if (warp == 0) select_ascending<uint32_t>(hist.count, bins, &s_count_need, &s_digit);
        __syncthreads();
        prefix |= s_digit << shift;
        resolved |= static_cast<uint32_t>(bins - 1) << shift;
        __syncthreads();
      }
      max_key = prefix;
    }
    // Top-p: the rank key of the group where the cumulative kept mass, ascending, reaches the limit.
    if (v.p.top_p != 0) {
      uint32_t prefix = 0, resolved = 0;
      for (int level = 0; level < 3; ++level) {
        const int bins = 1 << rank_digit_bits(level), shift = rank_digit_shift(level);
        for (int j = tid; j < bins; j += kSampleThreads) hist.mass[j] = 0;
        __syncthreads();
        for (int64_t i = tid; i < vocab; i += kSampleThreads) {
          uint32_t r;
          uint64_t m;
          bool min_p_kept;
          v.rank_mass(i, r, m, min_p_kept);
          if (min_p_kept && r <= max_key && (r & resolved) == prefix && m != 0)
            atomicAdd(&hist.mass[(r >> shift) & (bins - 1)], static_cast<unsigned long long>(m));
        }
        __syncthreads();
        if (warp == 0) {
          if (level == 0) {
            uint64_t total = 0;
            for (int j = lane; j < bins; j += 32) total += hist.mass[j];
            total = warp_sum_u64(total);
            if (lane == 0) s_need = sm::top_p_limit(total, v.p.top_p);
            __syncwarp();
          }
          select_ascending<unsigned long long>(hist.mass, bins, &s_need, &s_digit);
        }
        __syncthreads();
        prefix |= s_digit << shift;
        resolved |= static_cast<uint32_t>(bins - 1) << shift;
        __syncthreads();
      }
      max_key = min(max_key, prefix);
    }
    // The kept mass of each chunk of consecutive ids.
    const int64_t chunk_len = (vocab + kSampleChunks - 1) / kSampleChunks;
    for (int c = warp; c < kSampleChunks; c += kSampleThreads / 32) {
      const int64_t begin = c * chunk_len, end = min(vocab, begin + chunk_len);
      uint64_t sum = 0;
      for (int64_t i = begin + lane; i < end; i += 32) {
        uint32_t r;
        uint64_t m;
        bool min_p_kept;
        v.rank_mass(i, r, m, min_p_kept);
        if (min_p_kept && r <= max_key) sum += m;
      }
      sum = warp_sum_u64(sum);
      if (lane == 0) chunk_mass[c] = sum;
    }
    __syncthreads();
    if (warp == 0) {
      // Lane l owns chunks [32 l, 32 l + 32).
      uint64_t mine = 0;
      for (int j = 0; j < 32; ++j) mine += chunk_mass[lane * 32 + j];
      uint64_t inclusive = mine;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const uint64_t other = __shfl_up_sync(0xffffffffu, inclusive, o);
        if (lane >= o) inclusive += other;
      }
      const uint64_t kept_mass = __shfl_sync(0xffffffffu, inclusive, 31);
      const uint64_t target = sm::draw_target(v.p.random53, kept_mass);
      const uint64_t exclusive = inclusive - mine;
      const unsigned crossing = __ballot_sync(0xffffffffu, exclusive <= target && target < inclusive);
      int chunk = 0;
      uint64_t before = 0;
      if (crossing != 0) {
        const int owner = __ffs(crossing) - 1;
        if (lane == owner) {
          uint64_t cum = exclusive;
          for (int j = 0; j < 32; ++j) {
            const uint64_t h = chunk_mass[lane * 32 + j];
            if (cum + h > target) {
              chunk = lane * 32 + j;
              break;
            }
            cum += h;
          }
          before = cum;
        }
        chunk = __shfl_sync(0xffffffffu, chunk, owner);
        before = __shfl_sync(0xffffffffu, before, owner);
        // The chunk in id order: the first token whose inclusive cumulative mass passes the target.
        const int64_t begin = chunk * chunk_len, end = min(vocab, begin + chunk_len);
        int64_t found = -1;
        for (int64_t base = begin; base < end && found < 0; base += 32) {
          const int64_t i = base + lane;
          uint64_t m = 0;
          if (i < end) {
            uint32_t r;
            bool min_p_kept;
            v.rank_mass(i, r, m, min_p_kept);
            if (!(min_p_kept && r <= max_key)) m = 0;
          }
          uint64_t incl = m;
#pragma unroll
          for (int o = 1; o < 32; o <<= 1) {
            const uint64_t other = __shfl_up_sync(0xffffffffu, incl, o);
            if (lane >= o) incl += other;
          }
          const unsigned passed = __ballot_sync(0xffffffffu, before + incl > target);
          if (passed != 0) found = base + __ffs(passed) - 1;
          before += __shfl_sync(0xffffffffu, incl, 31);
        }
        if (found >= 0) pick = found;
      }
      if (lane == 0) s_pick = pick;
    }
    __syncthreads();
    pick = s_pick;
  }
  if (tid == 0) {
    a.out_ids[b] = static_cast<int32_t>(pick);
    if (v.table != nullptr) atomicAdd(a.penalties + static_cast<int64_t>(v.p.penalty_row) * vocab + pick, 1u);
  }
}

// ---- log-probabilities of the raw logits ----------------------------------------------------
// One pass per asking row: each thread keeps a running maximum and sum of exponentials, the count
// of tokens above the chosen one and its own most likely tokens (at most 20, sorted); the warps
// merge their threads' lists, then warp 0 merges the warps'.

__device__ __forceinline__ bool more_likely(float x, int32_t i, float y, int32_t j) {
  return x > y || (x == y && i < j);
}

// The most likely of the 32 lanes' candidates: every lane gets it.
__device__ __forceinline__ void warp_most_likely(float& x, int32_t& id) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ox = __shfl_xor_sync(0xffffffffu, x, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (more_likely(ox, oi, x, id)) x = ox, id = oi;
  }
}

__global__ void __launch_bounds__(kSampleThreads) row_logprobs_kernel(const SampleArgs a) {
  __shared__ float s_top_x[32][KILN_SAMPLE_MAX_LOGPROBS];
  __shared__ int32_t s_top_id[32][KILN_SAMPLE_MAX_LOGPROBS];
  __shared__ float s_max[32];
  __shared__ double s_sum[32];
  __shared__ int32_t s_rank[32];

  const int64_t b = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const SampleRow p = load_sample_row(a.rows + b * KILN_SAMPLE_ROW_WORDS, a);
  if (p.logprobs < 0 || a.out_logprobs == nullptr) return;
  const int64_t vocab = a.vocab;
  const float* row = a.logits + b * vocab;
  const int32_t chosen = a.out_ids[b];
  const float chosen_x = sm::clean(row[chosen]);
  const int n = static_cast<int>(p.logprobs < vocab ? p.logprobs : vocab);

  float top_x[KILN_SAMPLE_MAX_LOGPROBS];
  int32_t top_id[KILN_SAMPLE_MAX_LOGPROBS];
  int held = 0;
  float m = sm::negative_infinity();
  float s = 0.0f;
  int32_t above = 0;
  for (int64_t i = tid; i < vocab; i += kSampleThreads) {
    const float x = sm::clean(row[i]);
    if (x > m) {
      s = (m == sm::negative_infinity() ? 0.0f : s * expf(m - x)) + 1.0f;
      m = x;
    } else if (x != sm::negative_infinity()) {
      s += expf(x - m);
    }
    above += x > chosen_x;
    if (n > 0 && (held < n || more_likely(x, static_cast<int32_t>(i), top_x[n - 1], top_id[n - 1]))) {
      int j = held < n ? held++ : n - 1;
      while (j > 0 && more_likely(x, static_cast<int32_t>(i), top_x[j - 1], top_id[j - 1])) {
        top_x[j] = top_x[j - 1];
        top_id[j] = top_id[j - 1];
        --j;
      }
      top_x[j] = x;
      top_id[j] = static_cast<int32_t>(i);
    }
  }
  // The row's maximum, then the sum rescaled to it, in double.
  float row_max = m;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, o));
  if (lane == 0) s_max[warp] = row_max;
  __syncthreads();
  row_max = s_max[lane];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, o));
  double sum = (m == sm::negative_infinity()) ? 0.0 : static_cast<double>(s) * exp(static_cast<double>(m) - row_max);
  int32_t rank = above;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    rank += __shfl_xor_sync(0xffffffffu, rank, o);
  }
  // This warp's most likely n: n rounds, each taking the best head of the lanes' sorted lists.
  int head = 0;
  for (int r = 0; r < n; ++r) {
    float x = head < held ? top_x[head] : sm::negative_infinity();
    int32_t id = head < held ? top_id[head] : INT32_MAX;
    warp_most_likely(x, id);
    if (head < held && top_id[head] == id) ++head;
    if (lane == 0) s_top_x[warp][r] = x, s_top_id[warp][r] = id;
  }
  if (lane == 0) s_sum[warp] = sum, s_rank[warp] = rank;
  __syncthreads();
  if (warp != 0) return;
  sum = s_sum[lane];
  rank = s_rank[lane];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    rank += __shfl_xor_sync(0xffffffffu, rank, o);
  }
  const double log_z = row_max == sm::negative_infinity() ? log(static_cast<double>(vocab))
                                                           : static_cast<double>(row_max) + log(sum);
  auto logprob = [&](float x) {
    return row_max == sm::negative_infinity() ? static_cast<float>(-log_z) : static_cast<float>(x - log_z);
  };
  int32_t* out = a.out_logprobs + b * KILN_SAMPLE_LOGPROB_WORDS;
  if (lane == 0) {
    out[0] = __float_as_int(logprob(chosen_x));
    out[1] = rank + 1;
  }
  head = 0;
  for (int r = 0; r < n; ++r) {
    float x = head < n ? s_top_x[lane][head] : sm::negative_infinity();
    int32_t id = head < n ? s_top_id[lane][head] : INT32_MAX;
    warp_most_likely(x, id);
    if (head < n && s_top_id[lane][head] == id) ++head;
    if (lane == 0) {
      out[2 + 2 * r] = id;
      out[3 + 2 * r] = __float_as_int(logprob(x));
    }
  }
}

// ---- penalty rows ---------------------------------------------------------------------------

__global__ void reset_penalty_row_kernel(uint32_t* table_row, int64_t vocab, const int32_t* tokens, int64_t num_prompt,
                                         int64_t num_output, int64_t num_suppressed) {
  const int64_t n = num_prompt + num_output + num_suppressed;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t id = tokens[e];
    if (id < 0 || id >= vocab) continue;  // NOTE: refused by the Java side; never written here
    if (e < num_prompt) {
      atomicOr(&table_row[id], KILN_PENALTY_IN_PROMPT);
    } else if (e < num_prompt + num_output) {
      atomicAdd(&table_row[id], 1u);
    } else {
      atomicOr(&table_row[id], KILN_PENALTY_SUPPRESSED);
    }
  }
}

}  // namespace kiln
