// Launchers of the sampling ops (device code in sampling.cuh).
#include "sampling.cuh"

namespace kiln {
namespace {

int check_logits(const char* name, const void* logits, int64_t stride, int dtype, int64_t batch, int64_t vocab) {
  KILN_REQUIRE(logits != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null logits", name);
  KILN_REQUIRE(batch >= 0 && batch <= 2147483647 && vocab > 0 && vocab < (1ll << 31) && stride >= vocab,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes (batch %lld, vocab %lld, stride %lld)", name,
               (long long)batch, (long long)vocab, (long long)stride);
  KILN_REQUIRE(dtype == KILN_CUDA_F32 || dtype == KILN_CUDA_F16 || dtype == KILN_CUDA_BF16, KILN_CUDA_ERR_UNSUPPORTED,
               "%s: logits dtype %d is not supported (f32, f16, bf16)", name, dtype);
  return KILN_CUDA_OK;
}

int launch_sample(const char* name, const SampleParams& p, int dtype, int64_t batch, cudaStream_t s) {
  if (batch == 0) return KILN_CUDA_OK;
  switch (dtype) {
    case KILN_CUDA_F32: sample_kernel<float><<<batch, kSampleThreads, 0, s>>>(p); break;
    case KILN_CUDA_F16: sample_kernel<__half><<<batch, kSampleThreads, 0, s>>>(p); break;
    default: sample_kernel<__nv_bfloat16><<<batch, kSampleThreads, 0, s>>>(p); break;
  }
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}

}  // namespace
}  // namespace kiln

using namespace kiln;

extern "C" int kiln_cuda_apply_penalties(void* logits, int64_t logits_stride, int logits_dtype, int64_t batch,
                                         int64_t vocab, const int32_t* penalty_offsets, const int32_t* token_ids,
                                         const int32_t* counts, const float* repetition, const float* presence,
                                         const float* frequency, void* stream) {
  const char* name = "kiln_cuda_apply_penalties";
  const int status = check_logits(name, logits, logits_stride, logits_dtype, batch, vocab);
  if (status != KILN_CUDA_OK) return status;
  KILN_REQUIRE(penalty_offsets && token_ids, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null offsets or token ids", name);
  if (batch == 0) return KILN_CUDA_OK;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (logits_dtype) {
    case KILN_CUDA_F32:
      apply_penalties_kernel<float><<<batch, 128, 0, s>>>(static_cast<float*>(logits), logits_stride, vocab,
                                                          penalty_offsets, token_ids, counts, repetition, presence,
                                                          frequency);
      break;
    case KILN_CUDA_F16:
      apply_penalties_kernel<__half><<<batch, 128, 0, s>>>(static_cast<__half*>(logits), logits_stride, vocab,
                                                           penalty_offsets, token_ids, counts, repetition, presence,
                                                           frequency);
      break;
    default:
      apply_penalties_kernel<__nv_bfloat16><<<batch, 128, 0, s>>>(static_cast<__nv_bfloat16*>(logits), logits_stride,
                                                                  vocab, penalty_offsets, token_ids, counts, repetition,
                                                                  presence, frequency);
      break;
  }
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}

namespace kiln {
namespace {

// Parts of the argmax workspace for `batch` rows of at most `chunks` chunks.
struct ArgmaxLayout {
  int64_t max_offset, sum_offset, idx_offset, counter_offset, bytes;
  ArgmaxLayout(int64_t batch, int64_t chunks) {
    const int64_t parts = align256(batch * chunks * 4);
    counter_offset = 0;
    max_offset = align256(batch * 4);
    sum_offset = max_offset + parts;
    idx_offset = sum_offset + parts;
    bytes = idx_offset + parts;
  }
};

template <typename L>
int launch_argmax_chunks(ArgmaxParams p, int64_t batch, void* workspace, cudaStream_t s) {
  const ArgmaxLayout layout(batch, p.chunks);
  char* base = static_cast<char*>(workspace);
  p.counters = reinterpret_cast<uint32_t*>(base + layout.counter_offset);
  p.part_max = reinterpret_cast<float*>(base + layout.max_offset);
  p.part_sum = reinterpret_cast<float*>(base + layout.sum_offset);
  p.part_idx = reinterpret_cast<int32_t*>(base + layout.idx_offset);
  argmax_chunk_kernel<L><<<dim3(p.chunks, static_cast<unsigned>(batch)), kArgmaxThreads, 0, s>>>(p);
  KILN_CHECK_LAUNCH("kiln_cuda_argmax");
  return KILN_CUDA_OK;
}

}  // namespace
}  // namespace kiln

extern "C" int64_t kiln_cuda_argmax_workspace_size(int64_t batch, int64_t vocab) {
  (void)vocab;
  if (batch <= 0) return 0;
  return ArgmaxLayout(batch, kArgmaxMaxChunks).bytes;
}

extern "C" int kiln_cuda_argmax(const void* logits, int64_t logits_stride, int logits_dtype, int64_t batch,
                                int64_t vocab, int32_t* out_ids, float* out_logprobs, void* workspace,
                                int64_t workspace_bytes, void* stream) {
  const char* name = "kiln_cuda_argmax";
  const int status = check_logits(name, logits, logits_stride, logits_dtype, batch, vocab);
  if (status != KILN_CUDA_OK) return status;
  KILN_REQUIRE(out_ids != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null out_ids", name);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (workspace == nullptr) {  // one block per row
    SampleParams p{};
    p.logits = logits;
    p.logits_stride = logits_stride;
    p.vocab = vocab;
    p.out_ids = out_ids;
    p.out_logprobs = out_logprobs;
    return launch_sample(name, p, logits_dtype, batch, s);
  }
  KILN_REQUIRE(batch <= 65535, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: %lld rows, at most 65535 with a workspace", name,
               (long long)batch);
  KILN_REQUIRE(workspace_bytes >= kiln_cuda_argmax_workspace_size(batch, vocab) &&
                   (reinterpret_cast<uintptr_t>(workspace) & 255u) == 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: the workspace must be 256-byte aligned and hold %lld bytes (got %lld)", name,
               (long long)kiln_cuda_argmax_workspace_size(batch, vocab), (long long)workspace_bytes);
  if (batch == 0) return KILN_CUDA_OK;
  // Enough chunks for two blocks per multiprocessor, none shorter than kArgmaxMinChunk.
  const int64_t by_gpu = (2 * current_sm_count() + batch - 1) / batch;
  const int64_t by_len = (vocab + kArgmaxMinChunk - 1) / kArgmaxMinChunk;
  int64_t chunks = by_gpu < by_len ? by_gpu : by_len;
  chunks = chunks < kArgmaxMaxChunks ? (chunks > 1 ? chunks : 1) : kArgmaxMaxChunks;
  ArgmaxParams p{};
  p.logits = logits;
  p.logits_stride = logits_stride;
  p.vocab = vocab;
  p.chunks = static_cast<int>(chunks);
  p.chunk_len = (vocab + chunks - 1) / chunks;
  p.out_ids = out_ids;
  p.out_logprobs = out_logprobs;
  switch (logits_dtype) {
    case KILN_CUDA_F32: return launch_argmax_chunks<float>(p, batch, workspace, s);
    case KILN_CUDA_F16: return launch_argmax_chunks<__half>(p, batch, workspace, s);
    default: return launch_argmax_chunks<__nv_bfloat16>(p, batch, workspace, s);
  }
}

extern "C" int kiln_cuda_sample(const void* logits, int64_t logits_stride, int logits_dtype, int64_t batch,
                                int64_t vocab, const float* temperature, const int32_t* top_k, const float* top_p,
                                const float* min_p, const uint64_t* seeds, const int64_t* steps, int32_t* out_ids,
                                float* out_logprobs, void* stream) {
  const char* name = "kiln_cuda_sample";
  const int status = check_logits(name, logits, logits_stride, logits_dtype, batch, vocab);
  if (status != KILN_CUDA_OK) return status;
  KILN_REQUIRE(temperature && seeds && steps && out_ids, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: temperature, seeds, steps and out_ids are required", name);
  SampleParams p{logits, logits_stride, vocab, temperature, top_k, top_p, min_p, seeds, steps, out_ids, out_logprobs};
  return launch_sample(name, p, logits_dtype, batch, static_cast<cudaStream_t>(stream));
}
