// Shared pieces of the op-test harness: 16-bit float conversions, device buffers, comparison
// with the flash-attention error rule, and the references that the CPU twin lacks.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// ---- 16-bit floats on the host ------------------------------------------------------------------

uint16_t to_half_bits(float f, int dtype);      // round to nearest even
float from_half_bits(uint16_t bits, int dtype);
inline float round_to(float f, int dtype) { return dtype == 0 ? f : from_half_bits(to_half_bits(f, dtype), dtype); }

// ---- device memory ---------------------------------------------------------------------------------

#define CUDA_OK(call)                                                                              \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                \
    }                                                                                              \
  } while (0)

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&ptr, n > 0 ? n : 1)); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) { o.ptr = nullptr; }
  ~DeviceBuffer() { if (ptr) cudaFree(ptr); }
  template <typename T> T* as() const { return static_cast<T*>(ptr); }
  void poison() const { CUDA_OK(cudaMemset(ptr, 0xFF, bytes)); }  // NaN in fp16, bf16 and fp32
};

// Values (fp32) stored on the device as dtype (0: fp32, 1: fp16, 2: bf16).
DeviceBuffer upload(const std::vector<float>& values, int dtype);
std::vector<float> download(const DeviceBuffer& buffer, size_t count, int dtype);
template <typename T>
DeviceBuffer upload_raw(const std::vector<T>& values) {
  DeviceBuffer b(values.size() * sizeof(T));
  if (!values.empty()) CUDA_OK(cudaMemcpy(b.ptr, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}
template <typename T>
std::vector<T> download_raw(const DeviceBuffer& b, size_t count) {
  std::vector<T> v(count);
  if (count) CUDA_OK(cudaMemcpy(v.data(), b.ptr, count * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

// ---- comparison -----------------------------------------------------------------------------------

struct Comparison {
  double max_err = 0;        // max |got - ref|
  double naive_err = 0;      // max |naive - ref|: the same op done plainly in the low precision
  double bound = 0;          // 2 * naive_err + slack
  double rel_l2 = 0;         // ||got - ref|| / ||ref||
  long long bad = 0;         // NaN / unwritten where a value was expected, or a value where NaN was expected
  bool pass = false;
};

// ref may hold NaN where nothing must be written: got must then still hold the poison (NaN).
// slack: absolute slack, relative to max |ref|.
Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& naive,
                   double slack_rel);

// ---- references the CPU twin lacks ---------------------------------------------------------------

// Attention the plain low-precision way (flash-attention's "naive bf16" rule): S = Q K^T rounded
// to dtype, softmax in fp32 rounded to dtype, O = P V (fp32 sums) rounded to dtype.
// Layouts and semantics of kiln_cpu_attention; contiguous q/out rows.
void naive_attention_lowp(float* out, const float* q, const float* k_cache, const float* v_cache,
                          const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* query_start,
                          const int32_t* seq_lens, int64_t num_seqs, int64_t num_tokens, int64_t num_q_heads,
                          int64_t num_kv_heads, int64_t head_dim, int64_t block_size, float scale, int dtype);
