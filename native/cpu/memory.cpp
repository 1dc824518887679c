// File mapping, host allocation and dtype conversion.
#include <fcntl.h>
#include <omp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "common.h"

namespace {

// Threads of every op's parallel region; 0: one per processor OpenMP sees.
// NOTE: a process-wide setting, not omp_set_num_threads, whose setting belongs to the thread that
// makes it: the ops run on the engine's thread, not the one that made the backend.
std::atomic<int> g_op_threads{0};

}  // namespace

int kiln::op_threads() {
  const int chosen = g_op_threads.load(std::memory_order_relaxed);
  return chosen > 0 ? chosen : omp_get_num_procs();
}

extern "C" {

void* kiln_map_file(const char* path, int64_t* size_out) {
  if (path == nullptr || size_out == nullptr) {
    kiln::fail(KILN_ERR_INVALID_ARGUMENT, "kiln_map_file: NULL argument");
    return nullptr;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    kiln::fail(KILN_ERR_IO, "cannot open %s: %s", path, std::strerror(errno));
    return nullptr;
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    kiln::fail(KILN_ERR_IO, "cannot stat %s: %s", path, std::strerror(errno));
    close(fd);
    return nullptr;
  }
  if (!S_ISREG(info.st_mode)) {
    kiln::fail(KILN_ERR_IO, "%s is not a regular file", path);
    close(fd);
    return nullptr;
  }
  *size_out = info.st_size;
  if (info.st_size == 0) {
    kiln::fail(KILN_ERR_IO, "%s is empty", path);
    close(fd);
    return nullptr;
  }
  void* address = mmap(nullptr, static_cast<size_t>(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int saved_errno = errno;
  close(fd);  // the mapping keeps the file open
  if (address == MAP_FAILED) {
    kiln::fail(KILN_ERR_IO, "cannot map %s: %s", path, std::strerror(saved_errno));
    return nullptr;
  }
  return address;
}

int kiln_unmap_file(void* address, int64_t size) {
  if (address == nullptr) return KILN_OK;
  if (munmap(address, static_cast<size_t>(size)) != 0) {
    return kiln::fail(KILN_ERR_IO, "munmap failed: %s", std::strerror(errno));
  }
  return KILN_OK;
}

void* kiln_cpu_alloc(int64_t bytes) {
  if (bytes <= 0) {
    kiln::fail(KILN_ERR_INVALID_ARGUMENT, "kiln_cpu_alloc: size %lld", (long long)bytes);
    return nullptr;
  }
  size_t rounded = (static_cast<size_t>(bytes) + 63) & ~static_cast<size_t>(63);
  void* address = std::aligned_alloc(64, rounded);
  if (address == nullptr) {
    kiln::fail(KILN_ERR_OUT_OF_MEMORY, "cannot allocate %lld bytes of host memory",
               (long long)bytes);
  }
  return address;
}

void kiln_cpu_free(void* address) { std::free(address); }

int kiln_cpu_copy(void* dst, const void* src, int64_t bytes) {
  KILN_CHECK(bytes >= 0, "kiln_cpu_copy: negative size %lld", (long long)bytes);
  if (bytes == 0) return KILN_OK;
  KILN_CHECK_PTR(dst);
  KILN_CHECK_PTR(src);
  std::memcpy(dst, src, static_cast<size_t>(bytes));
  return KILN_OK;
}

int kiln_cpu_convert(void* dst, int dst_dtype, const void* src, int src_dtype, int64_t n) {
  KILN_CHECK_PTR(dst);
  KILN_CHECK_PTR(src);
  KILN_CHECK_DTYPE(dst_dtype);
  KILN_CHECK_DTYPE(src_dtype);
  KILN_CHECK(n >= 0, "kiln_cpu_convert: negative count %lld", (long long)n);
  if (dst_dtype == src_dtype) {
    std::memcpy(dst, src, static_cast<size_t>(n * kiln::dtype_size(src_dtype)));
    return KILN_OK;
  }
#pragma omp parallel for schedule(static) if (n > (1 << 16)) num_threads(kiln::op_threads())
  for (int64_t i = 0; i < n; ++i) {
    float value = kiln::load_one(src, src_dtype, i);
    switch (dst_dtype) {
      case KILN_F32: static_cast<float*>(dst)[i] = value; break;
      case KILN_BF16: static_cast<uint16_t*>(dst)[i] = kiln::f32_to_bf16(value); break;
      case KILN_F16: static_cast<uint16_t*>(dst)[i] = kiln::f32_to_f16(value); break;
    }
  }
  return KILN_OK;
}

int64_t kiln_cpu_find_non_finite(const void* src, int dtype, int64_t n) {
  if (src != nullptr && dtype == KILN_F8_E4M3) {
    // e4m3 has no infinities; its NaNs are the codes with every exponent and mantissa bit set.
    const uint8_t* codes = static_cast<const uint8_t*>(src);
    for (int64_t i = 0; i < n; ++i)
      if ((codes[i] & 0x7f) == 0x7f) return i;
    return -1;
  }
  if (src == nullptr || !kiln::is_float_dtype(dtype)) return -1;
  // Exponent bits all ones means NaN or infinity, in every float format.
  int64_t first = n;
  if (dtype == KILN_F32) {
    const uint32_t* bits = static_cast<const uint32_t*>(src);
#pragma omp parallel for reduction(min : first) schedule(static) if (n > (1 << 20)) num_threads(kiln::op_threads())
    for (int64_t i = 0; i < n; ++i)
      if ((bits[i] & 0x7f800000u) == 0x7f800000u && i < first) first = i;
  } else {
    const uint16_t mask = dtype == KILN_BF16 ? 0x7f80 : 0x7c00;
    const uint16_t* bits = static_cast<const uint16_t*>(src);
#pragma omp parallel for reduction(min : first) schedule(static) if (n > (1 << 20)) num_threads(kiln::op_threads())
    for (int64_t i = 0; i < n; ++i)
      if ((bits[i] & mask) == mask && i < first) first = i;
  }
  return first == n ? -1 : first;
}

void kiln_cpu_set_num_threads(int num_threads) {
  g_op_threads.store(num_threads > 0 ? num_threads : 0, std::memory_order_relaxed);
}

int kiln_cpu_get_num_threads(void) { return kiln::op_threads(); }

}  // extern "C"
