// Sampling on the device: the greedy argmax (a row split over several blocks), and the sampler of
// the contract in kiln_sampling.h (one block per row), which writes back only the chosen ids and
// the log-probabilities asked for.
#pragma once

#include "common.cuh"
#include "kiln_sampling.h"

#include <cooperative_groups.h>

namespace kiln {

__device__ __forceinline__ float logit_at(const float* row, int64_t i) { return row[i]; }
__device__ __forceinline__ float logit_at(const __half* row, int64_t i) { return __half2float(row[i]); }
__device__ __forceinline__ float logit_at(const __nv_bfloat16* row, int64_t i) { return __bfloat162float(row[i]); }

// NaN counts as -inf and +inf as the largest float, as the sampler's contract reads logits.
template <typename L>
__device__ __forceinline__ float clean_logit(const L* row, int64_t i) {
  return ::kiln::sampling::clean(logit_at(row, i));
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

// One more occurrence in a penalty-table word; the count saturates, as on the CPU, rather than
// carry into the flag bits.
__device__ __forceinline__ void count_token(uint32_t* entry) {
  uint32_t old = *entry, seen;
  do {
    seen = old;
    if ((seen & KILN_PENALTY_COUNT_MASK) == KILN_PENALTY_COUNT_MASK) return;
    old = atomicCAS(entry, seen, seen + 1);
  } while (old != seen);
}

// ---- the sampler ---------------------------------------------------------------------------
// One block per row (or a cluster of blocks, at small batches) reaches the integers of the
// contract in kiln_sampling.h by passes over the row (the logits stay in L2 or HBM; each pass
// recomputes a token's processed logit, distance, rank key and mass from them):
//   1. the processed logits' maximum and first argmax (greedy rows end here);
//   2. top-k: a radix select of the k-th smallest rank key by token counts, 12 + 10 + 9 bits;
//   3. top-p: a radix select of the cut by mass among the tokens kept so far (the first pass's
//      histogram also gives their total, hence the limit); the first digit's bins are 1/128 of a
//      temperature unit wide, so that tokens spread over them and shared atomics rarely collide;
//   4. the kept mass of each warp's share of the block's ids; the draw's target falls in one,
//      which its block then scans in id order, a few ids a thread.
// A token's exponential is computed only once its rank key has passed the cheaper tests.
// Every sum is of integers, so the order of the atomics and reductions changes nothing.

constexpr int kSampleThreads = 512;
constexpr int kRankBins = 4096;  // the widest digit: 12 bits

namespace sm = ::kiln::sampling;

struct SampleArgs {
  const float* logits;       // [batch, vocab]
  int64_t batch, vocab;
  const int32_t* rows;       // [batch, KILN_SAMPLE_ROW_WORDS]
  uint32_t* penalties;       // [penalty_rows, vocab] or nullptr
  int64_t penalty_rows;
  int32_t* out_ids;          // [batch]
  int32_t* out_logprobs;     // [batch, KILN_SAMPLE_LOGPROB_WORDS] or nullptr
};

using sm::SampleRow;

__device__ __forceinline__ SampleRow load_sample_row(const int32_t* w, const SampleArgs& a) {
  SampleRow r = sm::decode_row(w);
  r.random53 &= (1ull << 53) - 1;
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

  __device__ __forceinline__ float processed(float raw, uint32_t entry) const {
    if (table == nullptr) return sm::clean(raw);
    return sm::processed_logit(raw, entry, p.flags, p.repetition, p.presence, p.frequency);
  }
  __device__ __forceinline__ float logit(int64_t i) const { return processed(__ldg(row + i), table ? table[i] : 0u); }
  __device__ __forceinline__ float distance_of(float y) const { return sm::distance(max_logit, y, inv_t); }
  // The mass of a token at distance d that min-p keeps, else 0 (the exponential only computed
  // for tokens that passed the cheaper rank tests).
  __device__ __forceinline__ uint64_t kept_mass(float d) const {
    const float w = sm::weight(d);
    return (p.min_p > 0.0f && !(w >= p.min_p)) ? 0 : sm::mass(w);
  }
};

// Calls f(i, processed logit) for ids i = first, first + stride, ... below end, in that order,
// with four loads in flight (a pass is bound by load latency otherwise).
template <typename F>
__device__ __forceinline__ void for_each_logit(const SampleView& v, int64_t first, int64_t end, int64_t stride, F&& f) {
  constexpr int kInFlight = 4;
  int64_t i = first;
  for (; i + (kInFlight - 1) * stride < end; i += kInFlight * stride) {
    float raw[kInFlight];
    uint32_t entry[kInFlight];
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      raw[u] = __ldg(v.row + i + u * stride);
      entry[u] = v.table != nullptr ? v.table[i + u * stride] : 0u;
    }
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) f(i + u * stride, v.processed(raw[u], entry[u]));
  }
  for (; i < end; i += stride) f(i, v.logit(i));
}

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

// ---- a row over a cluster of blocks ---------------------------------------------------------
// At small batches one block a row leaves most of the GPU idle, so a row may be split over a
// cluster of up to 8 blocks (sm_90), each taking a contiguous slice of the ids. Every cluster-wide
// quantity (the maximum, each histogram, the segments' masses) is reduced through distributed
// shared memory in rank order, so every block of the cluster reaches the same integers, and those
// are the ones one block alone would reach.

__device__ __forceinline__ unsigned cluster_rank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().block_rank();
#else
  return 0;
#endif
}

__device__ __forceinline__ unsigned cluster_blocks() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().num_blocks();
#else
  return 1;
#endif
}

// Every thread of the cluster waits for every other; shared memory written before is visible.
__device__ __forceinline__ void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cooperative_groups::this_cluster().sync();
#else
  __syncthreads();
#endif
}

// The same shared variable in the block of cluster rank `rank`.
template <typename T>
__device__ __forceinline__ T* at_rank(T* local, unsigned rank) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().map_shared_rank(local, rank);
#else
  (void)rank;
  return local;
#endif
}

constexpr int kSampleWarps = kSampleThreads / 32;

struct SampleShared {
  unsigned long long hist[2][kRankBins];  // this block's histogram, by level parity
  unsigned long long merged[kRankBins];   // the cluster's, summed in rank order
  unsigned long long segment_mass[kSampleWarps];
  unsigned long long run_mass[kSampleWarps];
  float val[32];
  int64_t idx[32];
  float best;                              // this block's maximum and its first index
  int64_t best_idx;
  unsigned long long need;
  uint32_t digit;
  uint32_t owner;                          // the rank whose slice holds the drawn token
  int64_t pick;
};

// One row's slice [lo, hi) in this block, and the level count that picks histogram buffers.
struct RowSlice {
  int64_t lo, hi;
  int level;
};

// This level's histogram buffer as counts (32-bit atomics are the cheaper) or masses.
template <typename C>
__device__ __forceinline__ C* histogram(SampleShared& sh, int parity) {
  return reinterpret_cast<C*>(&sh.hist[parity][0]);
}

// Sums every block's histogram of this level into `merged` (all blocks get the same sums).
template <typename C>
__device__ __forceinline__ void merge_histograms(SampleShared& sh, int parity, int bins) {
  cluster_barrier();
  const unsigned blocks = cluster_blocks();
  C* local = histogram<C>(sh, parity);
  for (int j = threadIdx.x; j < bins; j += kSampleThreads) {
    unsigned long long total = 0;
    for (unsigned r = 0; r < blocks; ++r) total += at_rank(local, r)[j];
    sh.merged[j] = total;
  }
  __syncthreads();
}

// Top-k: the k-th smallest rank key among all tokens, by a radix select of counts.
__device__ uint32_t top_k_key(const SampleView& v, RowSlice& slice, SampleShared& sh) {
  const int tid = threadIdx.x;
  uint32_t prefix = 0, resolved = 0;
  if (tid == 0) sh.need = static_cast<unsigned long long>(v.p.top_k);
  for (int level = 0; level < 3; ++level, ++slice.level) {
    const int bins = 1 << rank_digit_bits(level), shift = rank_digit_shift(level), parity = slice.level & 1;
    uint32_t* hist = histogram<uint32_t>(sh, parity);
    for (int j = tid; j < bins; j += kSampleThreads) hist[j] = 0;
    __syncthreads();
    for_each_logit(v, slice.lo + tid, slice.hi, kSampleThreads, [&](int64_t, float y) {
      const uint32_t r = sm::rank_key(v.distance_of(y));
      if ((r & resolved) == prefix) atomicAdd(&hist[(r >> shift) & (bins - 1)], 1u);
    });
    __syncthreads();
    merge_histograms<uint32_t>(sh, parity, bins);
    if (tid < 32) select_ascending<unsigned long long>(sh.merged, bins, &sh.need, &sh.digit);
    __syncthreads();
    prefix |= sh.digit << shift;
    resolved |= static_cast<uint32_t>(bins - 1) << shift;
  }
  return prefix;
}

// Top-p: the rank key of the group where the cumulative kept mass, ascending, reaches the limit.
__device__ uint32_t top_p_key(const SampleView& v, RowSlice& slice, uint32_t max_key, SampleShared& sh) {
  const int tid = threadIdx.x, lane = tid & 31;
  uint32_t prefix = 0, resolved = 0;
  for (int level = 0; level < 3; ++level, ++slice.level) {
    const int bins = 1 << rank_digit_bits(level), shift = rank_digit_shift(level), parity = slice.level & 1;
    unsigned long long* hist = histogram<unsigned long long>(sh, parity);
    for (int j = tid; j < bins; j += kSampleThreads) hist[j] = 0;
    __syncthreads();
    for_each_logit(v, slice.lo + tid, slice.hi, kSampleThreads, [&](int64_t, float y) {
      const float d = v.distance_of(y);
      const uint32_t r = sm::rank_key(d);
      if (r > max_key || (r & resolved) != prefix) return;
      const uint64_t m = v.kept_mass(d);
      if (m != 0) atomicAdd(&hist[(r >> shift) & (bins - 1)], static_cast<unsigned long long>(m));
    });
    __syncthreads();
    merge_histograms<unsigned long long>(sh, parity, bins);
    if (tid < 32) {
      if (level == 0) {
        uint64_t total = 0;
        for (int j = lane; j < bins; j += 32) total += sh.merged[j];
        total = warp_sum_u64(total);
        if (lane == 0) sh.need = sm::top_p_limit(total, v.p.top_p);
        __syncwarp();
      }
      select_ascending<unsigned long long>(sh.merged, bins, &sh.need, &sh.digit);
    }
    __syncthreads();
    prefix |= sh.digit << shift;
    resolved |= static_cast<uint32_t>(bins - 1) << shift;
  }
  return prefix;
}

// The draw: each warp sums the kept mass of its share of the block's slice; the target falls in
// one such segment of one block (in rank, then warp order: id order), which that block splits
// into runs of a few ids per thread and scans. Returns the id in the owning block, -1 elsewhere.
__device__ int64_t draw_kept(const SampleView& v, const RowSlice& slice, uint32_t max_key, SampleShared& sh) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  auto mass_of = [&](float y) -> uint64_t {
    const float d = v.distance_of(y);
    return sm::rank_key(d) <= max_key ? v.kept_mass(d) : 0;
  };
  const int64_t segment_len = (slice.hi - slice.lo + kSampleWarps - 1) / kSampleWarps;
  {
    const int64_t begin = min(slice.hi, slice.lo + warp * segment_len), end = min(slice.hi, begin + segment_len);
    uint64_t sum = 0;
    for_each_logit(v, begin + lane, end, 32, [&](int64_t, float y) { sum += mass_of(y); });
    sum = warp_sum_u64(sum);
    if (lane == 0) sh.segment_mass[warp] = sum;
  }
  cluster_barrier();
  const unsigned blocks = cluster_blocks(), me = cluster_rank();
  if (tid == 0) {
    uint64_t kept_mass = 0;
    for (unsigned r = 0; r < blocks; ++r)
      for (int w = 0; w < kSampleWarps; ++w) kept_mass += at_rank(&sh.segment_mass[0], r)[w];
    const uint64_t target = sm::draw_target(v.p.random53, kept_mass);
    uint64_t before = 0;
    unsigned owner = 0;
    int segment = 0;
    for (bool found = false; !found;) {  // the first segment whose cumulative mass passes the target
      const uint64_t m = at_rank(&sh.segment_mass[0], owner)[segment];
      if (before + m > target || (owner == blocks - 1 && segment == kSampleWarps - 1)) {
        found = true;
      } else {
        before += m;
        if (++segment == kSampleWarps) segment = 0, ++owner;
      }
    }
    sh.need = target - before;  // what is still to pass inside the segment
    sh.digit = static_cast<uint32_t>(segment);
    sh.owner = owner;
    sh.pick = -1;
  }
  __syncthreads();
  if (sh.owner != me) return -1;
  const uint64_t remaining = sh.need;
  const int64_t begin = min(slice.hi, slice.lo + sh.digit * segment_len), end = min(slice.hi, begin + segment_len);
  const int64_t run = (segment_len + kSampleThreads - 1) / kSampleThreads;
  const int64_t run_begin = min(end, begin + tid * run), run_end = min(end, run_begin + run);
  uint64_t own = 0;
  for (int64_t i = run_begin; i < run_end; ++i) own += mass_of(v.logit(i));
  // Block-wide exclusive scan of the runs' masses.
  uint64_t inclusive = own;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const uint64_t other = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += other;
  }
  if (lane == 31) sh.run_mass[warp] = inclusive;
  __syncthreads();
  uint64_t warp_offset = 0;
  for (int w = 0; w < warp; ++w) warp_offset += sh.run_mass[w];
  const uint64_t exclusive = warp_offset + inclusive - own;
  if (exclusive <= remaining && remaining < exclusive + own) {
    uint64_t cum = exclusive;
    for (int64_t i = run_begin; i < run_end; ++i) {
      cum += mass_of(v.logit(i));
      if (cum > remaining) {
        sh.pick = i;
        break;
      }
    }
  }
  __syncthreads();
  return sh.pick;
}

// The cluster's maximum and its first index, from every block's (sh.best, sh.best_idx), combined
// in rank order; returns the maximum and sets best_idx.
__device__ __forceinline__ float cluster_max(SampleShared& sh, unsigned blocks, int64_t& best_idx) {
  float best = sm::negative_infinity();
  best_idx = INT64_MAX;
  for (unsigned r = 0; r < blocks; ++r) {
    const float v = *at_rank(&sh.best, r);
    const int64_t i = *at_rank(&sh.best_idx, r);
    if (v > best || (v == best && i < best_idx)) best = v, best_idx = i;
  }
  return best;
}

// Row b for the cluster b of the grid (blocks b * C .. b * C + C - 1, C = the cluster's size).
__global__ void __launch_bounds__(kSampleThreads) sample_rows_kernel(const SampleArgs a) {
  extern __shared__ __align__(16) unsigned char sample_smem[];
  SampleShared& sh = *reinterpret_cast<SampleShared*>(sample_smem);
  const int tid = threadIdx.x;
  const int64_t vocab = a.vocab;
  const unsigned blocks = cluster_blocks(), me = cluster_rank();
  const int64_t b = blockIdx.x / blocks;
  if (b >= a.batch) return;  // the whole cluster alike: no block waits at a barrier for it
  SampleView v;
  v.p = load_sample_row(a.rows + b * KILN_SAMPLE_ROW_WORDS, a);
  v.row = a.logits + b * vocab;
  v.table = v.p.penalty_row >= 0 ? a.penalties + static_cast<int64_t>(v.p.penalty_row) * vocab : nullptr;
  const int64_t per_block = (vocab + blocks - 1) / blocks;
  RowSlice slice{min(vocab, me * per_block), min(vocab, (me + 1) * per_block), 0};

  float best = sm::negative_infinity();
  int64_t best_idx = INT64_MAX;
  for_each_logit(v, slice.lo + tid, slice.hi, kSampleThreads, [&](int64_t i, float y) {
    if (y > best) best = y, best_idx = i;  // ascending i per thread: the first maximum stays
  });
  block_argmax(best, best_idx, sh.val, sh.idx);
  if (tid == 0) sh.best = best, sh.best_idx = best_idx;
  cluster_barrier();
  best = cluster_max(sh, blocks, best_idx);
  int64_t pick = best_idx >= vocab ? 0 : best_idx;  // every logit -inf: token 0
  v.max_logit = best;
  unsigned writer = 0;
  if (v.p.temperature > 0.0f && best != sm::negative_infinity()) {
    v.inv_t = sm::div(1.0f, v.p.temperature);
    uint32_t max_key = UINT32_MAX;
    if (v.p.top_k > 0 && v.p.top_k < vocab) max_key = top_k_key(v, slice, sh);
    if (v.p.top_p != 0) max_key = min(max_key, top_p_key(v, slice, max_key, sh));
    const int64_t drawn = draw_kept(v, slice, max_key, sh);
    writer = sh.owner;
    if (drawn >= 0) pick = drawn;  // NOTE: always found: the most likely token holds 2^40 of the mass
  }
  if (me == writer && tid == 0) {
    a.out_ids[b] = static_cast<int32_t>(pick);
    if (v.table != nullptr) count_token(a.penalties + static_cast<int64_t>(v.p.penalty_row) * vocab + pick);
  }
  cluster_barrier();  // no block leaves while another may still read its shared memory
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
  constexpr int kWarps = kSampleThreads / 32;
  if (lane == 0) s_max[warp] = row_max;
  __syncthreads();
  row_max = lane < kWarps ? s_max[lane] : sm::negative_infinity();
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
  sum = lane < kWarps ? s_sum[lane] : 0.0;
  rank = lane < kWarps ? s_rank[lane] : 0;
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
    const bool has = lane < kWarps && head < n;
    float x = has ? s_top_x[lane][head] : sm::negative_infinity();
    int32_t id = has ? s_top_id[lane][head] : INT32_MAX;
    warp_most_likely(x, id);
    if (has && s_top_id[lane][head] == id) ++head;
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
      count_token(&table_row[id]);
    } else {
      atomicOr(&table_row[id], KILN_PENALTY_SUPPRESSED);
    }
  }
}

}  // namespace kiln
