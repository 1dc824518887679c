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

}  // namespace
}  // namespace kiln

using namespace kiln;

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
  KILN_REQUIRE(workspace != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null workspace", name);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
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

extern "C" int kiln_cuda_sample(const float* logits, int64_t batch, int64_t vocab, const int32_t* rows,
                                uint32_t* penalties, int64_t penalty_rows, int32_t* out_ids, int32_t* out_logprobs,
                                void* stream) {
  const char* name = "kiln_cuda_sample";
  KILN_REQUIRE(logits && rows && out_ids, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null logits, rows or out_ids", name);
  KILN_REQUIRE(batch >= 0 && batch <= 268435455 && vocab > 0 && vocab <= KILN_SAMPLE_MAX_VOCAB && penalty_rows >= 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes (batch %lld, vocab %lld, penalty rows %lld)", name,
               (long long)batch, (long long)vocab, (long long)penalty_rows);
  KILN_REQUIRE(penalties != nullptr || penalty_rows == 0, KILN_CUDA_ERR_INVALID_ARGUMENT,
               "%s: %lld penalty rows but no table", name, (long long)penalty_rows);
  if (batch == 0) return KILN_CUDA_OK;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const SampleArgs args{logits, batch, vocab, rows, penalties, penalty_rows, out_ids, out_logprobs};
  // A row over a cluster of C blocks where the kernel that runs was built for sm_90 or later
  // (clusters and distributed shared memory): the largest C of 1, 2, 4, 8 that keeps the grid
  // within two blocks per multiprocessor.
  cudaFuncAttributes built{};
  KILN_REQUIRE(cudaFuncGetAttributes(&built, sample_rows_kernel) == cudaSuccess, KILN_CUDA_ERR_LAUNCH,
               "%s: cudaFuncGetAttributes failed", name);
  const bool clusters = built.binaryVersion >= 90;
  const int64_t sms = current_sm_count();
  int64_t cluster = 1;
  while (clusters && cluster < 8 && batch * cluster * 2 <= 2 * sms) cluster *= 2;
  // NOTE: set on every call: the attribute belongs to the current device's context.
  const size_t smem = sizeof(SampleShared);
  const cudaError_t smem_status =
      cudaFuncSetAttribute(sample_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  KILN_REQUIRE(smem_status == cudaSuccess, KILN_CUDA_ERR_LAUNCH, "%s: %zu bytes of shared memory: %s", name, smem,
               cudaGetErrorString(smem_status));
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(batch * cluster));
  config.blockDim = dim3(kSampleThreads);
  config.dynamicSmemBytes = smem;
  config.stream = s;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(cluster);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = clusters ? 1 : 0;
  const cudaError_t launched = cudaLaunchKernelEx(&config, sample_rows_kernel, args);
  KILN_REQUIRE(launched == cudaSuccess, KILN_CUDA_ERR_LAUNCH, "%s: %s", name, cudaGetErrorString(launched));
  KILN_CHECK_LAUNCH(name);
  if (out_logprobs != nullptr) {
    row_logprobs_kernel<<<static_cast<unsigned>(batch), kSampleThreads, 0, s>>>(args);
    KILN_CHECK_LAUNCH("kiln_cuda_sample (logprobs)");
  }
  return KILN_CUDA_OK;
}

extern "C" int kiln_cuda_reset_penalty_row(uint32_t* penalties, int64_t penalty_rows, int64_t vocab, int64_t row,
                                           const int32_t* tokens, int64_t num_prompt, int64_t num_output,
                                           int64_t num_suppressed, void* stream) {
  const char* name = "kiln_cuda_reset_penalty_row";
  KILN_REQUIRE(penalties != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null table", name);
  KILN_REQUIRE(vocab > 0 && row >= 0 && row < penalty_rows && num_prompt >= 0 && num_output >= 0 && num_suppressed >= 0,
               KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: bad sizes (row %lld of %lld, %lld + %lld + %lld ids)", name,
               (long long)row, (long long)penalty_rows, (long long)num_prompt, (long long)num_output,
               (long long)num_suppressed);
  const int64_t n = num_prompt + num_output + num_suppressed;
  KILN_REQUIRE(n == 0 || tokens != nullptr, KILN_CUDA_ERR_INVALID_ARGUMENT, "%s: null tokens", name);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  uint32_t* table_row = penalties + row * vocab;
  KILN_REQUIRE(cudaMemsetAsync(table_row, 0, static_cast<size_t>(vocab) * sizeof(uint32_t), s) == cudaSuccess,
               KILN_CUDA_ERR_LAUNCH, "%s: cudaMemsetAsync failed", name);
  if (n == 0) return KILN_CUDA_OK;
  const int64_t blocks = (n + 255) / 256;
  reset_penalty_row_kernel<<<static_cast<unsigned>(blocks < 1024 ? blocks : 1024), 256, 0, s>>>(
      table_row, vocab, tokens, num_prompt, num_output, num_suppressed);
  KILN_CHECK_LAUNCH(name);
  return KILN_CUDA_OK;
}
