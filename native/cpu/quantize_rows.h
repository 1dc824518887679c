// Per-row symmetric quantization of a weight matrix at load, shared by the int8 and e4m3 forms:
// each row's scale is its largest magnitude over the format's largest code, each value encoded as
// value / scale (an all-zero row gets scale 0 and zero codes). A row holding a NaN or an infinity
// is refused: its scale would poison every product.
#pragma once

#include <omp.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "common.h"

namespace kiln {

// The smallest scale a quantised row or input gets (FLT_MIN, 2^-126): its reciprocal is finite.
constexpr float kSmallestScale = 1.17549435e-38f;

// dst: [rows, cols] codes; scales: [rows]; src: [rows, cols] of src_dtype (pointers and dtype
// checked by the caller, whose name the messages carry). encode(v) turns v / scale (within
// [-max_code, max_code] up to rounding) into a code.
template <typename Code, typename Encode>
int quantize_rows(const char* name, Code* dst, float* scales, const void* src, int src_dtype, int64_t rows,
                  int64_t cols, float max_code, Encode encode) {
  KILN_CHECK(rows >= 0 && cols > 0, "%s: bad sizes rows=%lld cols=%lld", name, (long long)rows, (long long)cols);
  const int64_t src_row_bytes = cols * dtype_size(src_dtype);
  std::atomic<int64_t> non_finite_row{-1};
#pragma omp parallel num_threads(op_threads())
  {
    std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      load_f32(row.data(), static_cast<const char*>(src) + r * src_row_bytes, src_dtype, cols);
      float max_magnitude = 0.0f;
      bool finite = true;
      for (int64_t c = 0; c < cols; ++c) {
        finite = finite && std::isfinite(row[c]);
        const float magnitude = std::fabs(row[c]);
        max_magnitude = magnitude > max_magnitude ? magnitude : max_magnitude;
      }
      if (!finite) {
        non_finite_row.store(r, std::memory_order_relaxed);
        continue;
      }
      // NOTE: a scale below the smallest normal float would make 1 / scale overflow and turn the
      // row's zeros into NaN (0 * inf): such a row takes the smallest normal scale instead.
      float scale = max_magnitude / max_code;
      if (scale > 0.0f && scale < kSmallestScale) scale = kSmallestScale;
      const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
      Code* out = dst + r * cols;
      for (int64_t c = 0; c < cols; ++c) out[c] = encode(row[c] * inverse);
      scales[r] = scale;
    }
  }
  const int64_t bad = non_finite_row.load();
  if (bad >= 0) {
    return fail(KILN_ERR_INVALID_ARGUMENT, "%s: row %lld holds a NaN or infinite value", name, (long long)bad);
  }
  return KILN_OK;
}

}  // namespace kiln
