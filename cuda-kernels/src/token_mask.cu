// Launchers of the structured-output token mask and of logit bias (device code in token_mask.cuh).
#include "token_mask.cuh"

using namespace kiln;

extern "C" int kiln_cuda_mask_logits(float* logits, int64_t batch, int64_t vocab, const int32_t* masks,
                                     const int32_t* rows, int64_t num_rows, void* stream) {
  const char* name = "kiln_cuda_mask_logits";
  KILN_REQUIRE(batch >= 0 && vocab > 0 && vocab < (1ll << 31) && num_rows >= 0 && num_rows <= 65535,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes (batch %lld, vocab %lld, %lld rows; at most 65535)", name,
               (long long)batch, (long long)vocab, (long long)num_rows);
  if (num_rows == 0) return KILN_CUDA_OK;
  KILN_REQUIRE(logits != nullptr && masks != nullptr && rows != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: null logits, masks or rows", name);
  constexpr int kThreads = 256;
  const int64_t blocks = (vocab + kThreads - 1) / kThreads;
  // NOTE: a grid-stride loop past 1024 blocks per row: enough to fill the device at any batch.
  const dim3 grid(static_cast<unsigned>(blocks < 1024 ? blocks : 1024), static_cast<unsigned>(num_rows));
  mask_logits_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      logits, batch, vocab, reinterpret_cast<const uint32_t*>(masks), (vocab + 31) / 32, rows);
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}

extern "C" int kiln_cuda_add_logit_bias(float* logits, int64_t batch, int64_t vocab, const int32_t* entries,
                                        int64_t count, void* stream) {
  const char* name = "kiln_cuda_add_logit_bias";
  KILN_REQUIRE(batch >= 0 && vocab > 0 && count >= 0 && count < (1ll << 31), KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: bad sizes (batch %lld, vocab %lld, %lld entries)", name, (long long)batch, (long long)vocab,
               (long long)count);
  if (count == 0) return KILN_CUDA_OK;
  KILN_REQUIRE(logits != nullptr && entries != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null logits or entries",
               name);
  constexpr int kThreads = 256;
  add_logit_bias_kernel<<<static_cast<unsigned>((count + kThreads - 1) / kThreads), kThreads, 0,
                          static_cast<cudaStream_t>(stream)>>>(logits, batch, vocab, entries, count);
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}
