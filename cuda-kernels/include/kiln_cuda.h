// Kiln CUDA kernels: the C ABI that the Java binding (ai.kiln.backend.cuda.KilnCuda) calls.
//
// Every launcher takes device pointers owned by Java, sizes, and the stream to run on; it checks
// the sizes it supports (head size, block size, dtype) and refuses others with a message that
// kiln_cuda_last_error() returns. Launchers never synchronise and never allocate.
#ifndef KILN_CUDA_H
#define KILN_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Message of the last failed call on this thread ("" if none).
const char* kiln_cuda_last_error(void);

// Number of CUDA devices visible, 0 when there is no driver or device (never an error).
int kiln_cuda_device_count(void);

#ifdef __cplusplus
}
#endif

#endif  // KILN_CUDA_H
