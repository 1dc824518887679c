#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include "kiln_cuda.h"
#include "status.cuh"

namespace {
thread_local std::string last_error;
}

namespace kiln {

int cuda_fail(int code, const char* format, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof(buffer), format, args);
  va_end(args);
  last_error = buffer;
  return code;
}

}  // namespace kiln

extern "C" const char* kiln_cuda_last_error(void) { return last_error.c_str(); }

extern "C" int kiln_cuda_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

extern "C" int kiln_cuda_profiler_start(void) {
  cudaError_t status = cudaProfilerStart();
  return status == cudaSuccess ? KILN_CUDA_OK
                               : kiln::cuda_fail(KILN_CUDA_ERR_LAUNCH, "cudaProfilerStart: %s", cudaGetErrorString(status));
}

extern "C" int kiln_cuda_profiler_stop(void) {
  cudaError_t status = cudaProfilerStop();
  return status == cudaSuccess ? KILN_CUDA_OK
                               : kiln::cuda_fail(KILN_CUDA_ERR_LAUNCH, "cudaProfilerStop: %s", cudaGetErrorString(status));
}
