// Prefill attention device code, Hopper path (wgmma, sm_90a). Placeholder: no variant yet, the
// launcher falls back to the portable kernel.
#pragma once

#include "attention_prefill.h"
#include "common.cuh"

namespace kiln {

template <typename T, int kHeadDim>
int run_attention_prefill_sm90(PrefillParams, int64_t, cudaStream_t) {
  return KILN_CUDA_ERR_UNSUPPORTED;
}

}  // namespace kiln
