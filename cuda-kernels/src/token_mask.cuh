// Device code of the structured-output token mask and of logit bias (launchers in token_mask.cu).
#pragma once

#include "common.cuh"

namespace kiln {

// One thread per logit of one masked row: blockIdx.y is the mask row, the x blocks cover the
// vocabulary. A clear bit sets the logit to -inf. Rows naming a logits row outside [0, batch)
// are skipped (the rows are device memory the launcher cannot read).
//   logits: [batch, vocab] fp32; masks: [num_rows, words] int32; rows: [num_rows] int32
__global__ void mask_logits_kernel(float* __restrict__ logits, int64_t batch, int64_t vocab,
                                   const uint32_t* __restrict__ masks, int64_t words, const int32_t* __restrict__ rows) {
  const int64_t m = blockIdx.y;
  const int32_t row = rows[m];
  if (row < 0 || row >= batch) return;
  const uint32_t* mask = masks + m * words;
  float* out = logits + static_cast<int64_t>(row) * vocab;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < vocab;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (((mask[v >> 5] >> (v & 31)) & 1u) == 0) out[v] = -INFINITY;
  }
}

// One thread per bias entry (row, id, bias bits); the sampler gives distinct (row, id) pairs.
//   logits: [batch, vocab] fp32; entries: [count, 3] int32
__global__ void add_logit_bias_kernel(float* __restrict__ logits, int64_t batch, int64_t vocab,
                                      const int32_t* __restrict__ entries, int64_t count) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= count) return;
  const int32_t row = entries[3 * k], id = entries[3 * k + 1];
  if (row < 0 || row >= batch || id < 0 || id >= vocab) return;
  logits[static_cast<int64_t>(row) * vocab + id] += __int_as_float(entries[3 * k + 2]);
}

}  // namespace kiln
