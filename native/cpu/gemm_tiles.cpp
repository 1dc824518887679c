// The GEMM's register tiles for one x86-64 level, chosen by KILN_GEMM_LEVEL when compiled:
// 4 (AVX-512, 16 lanes), 3 (AVX2 + FMA + F16C, 8 lanes) or 0 (SSE2, 4 lanes). See gemm_tiles.h.
//
// NOTE: the MR x NR accumulators stay in vector registers for the whole of k: every step loads MR
// activation vectors and NR weight vectors for MR * NR fused multiply-adds. Weights are widened
// in registers as they are read (bf16: the high half of an fp32; fp16: a hardware conversion, or
// exact integer arithmetic on SSE2; int8: sign-extended and converted), so decode reads each
// weight once, in its stored size.
//
// Everything here has internal linkage but the level's table (see the header's note).
// NOTE: GCC 12's AVX-512 intrinsics initialise their undefined operands from themselves, which
// -Wextra reports at every use.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#include "gemm_tiles.h"

#ifndef KILN_GEMM_LEVEL
#error "compile with -DKILN_GEMM_LEVEL=4, 3 or 0"
#endif

namespace {

#if KILN_GEMM_LEVEL == 4
#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "KILN_GEMM_LEVEL=4 needs -march=x86-64-v4"
#endif
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vfma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
constexpr int kTileColsAtRows[4] = {4, 4, 4, 4};
inline Vec vadd(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec vscale(Vec v, float s) { return _mm512_mul_ps(v, _mm512_set1_ps(s)); }
inline float vsum(Vec v) { return _mm512_reduce_add_ps(v); }
inline Vec vbroadcast(const float* p) { return _mm512_set1_ps(*p); }
constexpr int kPanelRows = 12;  // 24 accumulators, 2 activation vectors and a broadcast of 32 registers
inline Vec widen_bf16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
inline Vec widen_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline Vec widen_i8(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
#define KILN_GEMM_TABLE kernels_x86_64_v4
#define KILN_GEMM_NAME "x86-64-v4 (AVX-512)"

#elif KILN_GEMM_LEVEL == 3
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "KILN_GEMM_LEVEL=3 needs -march=x86-64-v3"
#endif
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vfma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
inline Vec vadd(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec vscale(Vec v, float s) { return _mm256_mul_ps(v, _mm256_set1_ps(s)); }
inline Vec vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
constexpr int kPanelRows = 6;  // 12 accumulators, 2 activation vectors and a broadcast of 16 registers
// NOTE: at 4 activation rows a 4 x 4 tile's 16 accumulators fill the 16 registers and spill; 4 x 2
// measured faster on the Llama-3.2-1B shape's step (int8 67 -> 54 ms, bf16 78 -> 64 ms), while at
// 2 and 3 rows 4 columns stay ahead for int8.
constexpr int kTileColsAtRows[4] = {4, 4, 4, 2};
inline float vsum(Vec v) {
  __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  half = _mm_add_ss(half, _mm_movehdup_ps(half));
  return _mm_cvtss_f32(half);
}
inline Vec widen_bf16(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline Vec widen_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline Vec widen_i8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
#define KILN_GEMM_TABLE kernels_x86_64_v3
#define KILN_GEMM_NAME "x86-64-v3 (AVX2)"

#elif KILN_GEMM_LEVEL == 0
using Vec = __m128;
constexpr int kLanes = 4;
inline Vec vzero() { return _mm_setzero_ps(); }
inline Vec vload(const float* p) { return _mm_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm_storeu_ps(p, v); }
inline Vec vfma(Vec a, Vec b, Vec acc) { return _mm_add_ps(_mm_mul_ps(a, b), acc); }
inline Vec vadd(Vec a, Vec b) { return _mm_add_ps(a, b); }
inline Vec vscale(Vec v, float s) { return _mm_mul_ps(v, _mm_set1_ps(s)); }
inline Vec vbroadcast(const float* p) { return _mm_set1_ps(*p); }
constexpr int kPanelRows = 6;
constexpr int kTileColsAtRows[4] = {4, 4, 4, 4};  // not measured at this level
inline float vsum(Vec v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
  return _mm_cvtss_f32(v);
}
inline __m128i load4_u16(const uint16_t* p) {
  return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
}
inline Vec widen_bf16(const uint16_t* p) {
  return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), load4_u16(p)));
}
// Exact for every finite fp16 (weights are checked finite on load): the magnitude's bits moved into
// an fp32's place read as a number 2^-112 times too small, subnormals included.
inline Vec widen_f16(const uint16_t* p) {
  const __m128i bits = _mm_unpacklo_epi16(load4_u16(p), _mm_setzero_si128());
  const __m128i magnitude = _mm_slli_epi32(_mm_and_si128(bits, _mm_set1_epi32(0x7fff)), 13);
  const __m128 value = _mm_mul_ps(_mm_castsi128_ps(magnitude), _mm_set1_ps(0x1p112f));
  const __m128i sign = _mm_slli_epi32(_mm_and_si128(bits, _mm_set1_epi32(0x8000)), 16);
  return _mm_or_ps(value, _mm_castsi128_ps(sign));
}
inline Vec widen_i8(const int8_t* p) {
  int32_t four;
  __builtin_memcpy(&four, p, sizeof(four));
  const __m128i bytes = _mm_cvtsi32_si128(four);
  const __m128i words = _mm_unpacklo_epi8(bytes, bytes);
  return _mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpacklo_epi16(words, words), 24));
}
#define KILN_GEMM_TABLE kernels_baseline
#define KILN_GEMM_NAME "x86-64 (SSE2)"

#else
#error "KILN_GEMM_LEVEL must be 4, 3 or 0"
#endif

// One element of a weight row as fp32, for the tail past the last whole vector.
inline float scalar_bf16(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  __builtin_memcpy(&out, &wide, sizeof(out));
  return out;
}
inline float scalar_f16(uint16_t bits) {
  const uint32_t magnitude = static_cast<uint32_t>(bits & 0x7fffu) << 13;
  float value;
  __builtin_memcpy(&value, &magnitude, sizeof(value));
  value *= 0x1p112f;
  return (bits & 0x8000u) ? -value : value;
}

template <int Type> struct Weights;
template <> struct Weights<kiln::gemm::kWeightF32> {
  using Element = float;
  static Vec vector(const float* p) { return vload(p); }
  static float scalar(float v) { return v; }
};
template <> struct Weights<kiln::gemm::kWeightBf16> {
  using Element = uint16_t;
  static Vec vector(const uint16_t* p) { return widen_bf16(p); }
  static float scalar(uint16_t v) { return scalar_bf16(v); }
};
template <> struct Weights<kiln::gemm::kWeightF16> {
  using Element = uint16_t;
  static Vec vector(const uint16_t* p) { return widen_f16(p); }
  static float scalar(uint16_t v) { return scalar_f16(v); }
};
template <> struct Weights<kiln::gemm::kWeightI8> {
  using Element = int8_t;
  static Vec vector(const int8_t* p) { return widen_i8(p); }
  static float scalar(int8_t v) { return static_cast<float>(v); }
};

// How far ahead the tiles ask for weights. Measured on the decode products of the Llama-3.2-1B and
// 154M shapes (2 cores, AVX-512): about 16 KiB ahead (8 rows of 2 KiB, 4 of 4 KiB) read bf16 and
// int8 weights at 33-45 GB/s, against 20-30 GB/s without; 4 to 24 rows ahead were tried.
constexpr int64_t kPrefetchBytes = 16 << 10;
constexpr int64_t kMaxPrefetchRows = 32;

// How far ahead row_dot asks for its row's weights (4 KiB and 1 KiB measured alike).
constexpr int64_t kRowPrefetchBytes = 4 << 10;

// c[0] = dot(x, w) over k, one weight row read as a single stream, four accumulators deep.
template <int Type>
void row_dot(const float* x, const typename Weights<Type>::Element* w, int64_t k, float* c) {
  using W = Weights<Type>;
  constexpr int64_t kElementsPerLine = 64 / static_cast<int64_t>(sizeof(typename W::Element));
  constexpr int64_t kAhead = kRowPrefetchBytes / static_cast<int64_t>(sizeof(typename W::Element));
  Vec a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
  int64_t e = 0;
  for (; e + 4 * kLanes <= k; e += 4 * kLanes) {
#pragma GCC unroll 4
    for (int64_t line = 0; line < 4 * kLanes; line += kElementsPerLine) {
      __builtin_prefetch(w + e + line + kAhead, 0, 0);
    }
    a0 = vfma(vload(x + e), W::vector(w + e), a0);
    a1 = vfma(vload(x + e + kLanes), W::vector(w + e + kLanes), a1);
    a2 = vfma(vload(x + e + 2 * kLanes), W::vector(w + e + 2 * kLanes), a2);
    a3 = vfma(vload(x + e + 3 * kLanes), W::vector(w + e + 3 * kLanes), a3);
  }
  for (; e + kLanes <= k; e += kLanes) a0 = vfma(vload(x + e), W::vector(w + e), a0);
  float sum = vsum(vadd(vadd(a0, a1), vadd(a2, a3)));
  for (; e < k; ++e) sum += x[e] * W::scalar(w[e]);
  *c = sum;
}

template <int Type, int MR, int NR>
void tile(const float* x, int64_t x_stride, const void* weights, int64_t w_stride, int64_t k, float* c) {
  using W = Weights<Type>;
  // NOTE: one activation row (decode at batch 1) reads each weight row as one stream, every cache
  // line asked for 4 KiB ahead: the decode products of the Llama-3.2-1B shape read bf16 weights at
  // 61 GB/s this way against 38-48 with the 1 x 4 tile, int8 at 42-45 against 36-37 (2 AVX-512
  // cores, one after the other).
  if constexpr (MR == 1) {
    const typename W::Element* rows = static_cast<const typename W::Element*>(weights);
    for (int s = 0; s < NR; ++s) row_dot<Type>(x, rows + s * w_stride, k, c + s);
    return;
  }
  const typename W::Element* w = static_cast<const typename W::Element*>(weights);
  Vec acc[MR][NR];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int s = 0; s < NR; ++s) acc[r][s] = vzero();
  }
  // NOTE: the rows of a decode product are short streams (a few KiB each) that end before the
  // hardware prefetcher has ramped up; asking for the same place kPrefetchBytes further on (rows
  // that later tiles read) keeps enough misses in flight to reach the memory bandwidth.
  constexpr int64_t kElementsPerLine = 64 / static_cast<int64_t>(sizeof(typename W::Element));
  const int64_t row_bytes = w_stride * static_cast<int64_t>(sizeof(typename W::Element));
  int64_t ahead = kPrefetchBytes / (row_bytes > 0 ? row_bytes : 1);
  ahead = ahead < NR ? NR : (ahead > kMaxPrefetchRows ? kMaxPrefetchRows : ahead);
  int64_t e = 0;
  for (; e + kLanes <= k; e += kLanes) {
    Vec xv[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) xv[r] = vload(x + r * x_stride + e);
#pragma GCC unroll 4
    for (int s = 0; s < NR; ++s) {
      // Once per cache line of each weight row.
      if (e % kElementsPerLine == 0) __builtin_prefetch(w + (s + ahead) * w_stride + e, 0, 0);
      const Vec wv = W::vector(w + s * w_stride + e);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) acc[r][s] = vfma(xv[r], wv, acc[r][s]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int s = 0; s < NR; ++s) {
      float sum = vsum(acc[r][s]);
      for (int64_t t = e; t < k; ++t) sum += x[r * x_stride + t] * W::scalar(w[s * w_stride + t]);
      c[r * kiln::gemm::kMaxTileCols + s] = sum;
    }
  }
}

template <int Type>
void widen(float* dst, const void* source, float scale, int64_t n) {
  using W = Weights<Type>;
  const typename W::Element* src = static_cast<const typename W::Element*>(source);
  const bool scaled = Type == kiln::gemm::kWeightI8;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Vec v = W::vector(src + i);
    vstore(dst + i, scaled ? vscale(v, scale) : v);
  }
  for (; i < n; ++i) dst[i] = scaled ? scale * W::scalar(src[i]) : W::scalar(src[i]);
}

template <int MR, int NV>
void panel(const float* x_panel, const float* w, int64_t w_stride, int64_t k, float* c, const char* prefetch,
           int64_t prefetch_lines) {
  Vec acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = vzero();
  }
  for (int64_t e = 0; e < k; ++e) {
    if (e < prefetch_lines) __builtin_prefetch(prefetch + e * 64, 0, 3);
    Vec xv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) xv[v] = vload(x_panel + e * NV * kLanes + v * kLanes);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const Vec weight = vbroadcast(w + r * w_stride + e);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = vfma(weight, xv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) vstore(c + r * NV * kLanes + v * kLanes, acc[r][v]);
  }
}

template <int MR>
constexpr void set_panels(kiln::gemm::PanelFn (&dst)[kiln::gemm::kMaxPanelRows][2]) {
  if constexpr (MR >= 1) {
    dst[MR - 1][0] = panel<MR, 1>;
    dst[MR - 1][1] = panel<MR, 2>;
    set_panels<MR - 1>(dst);
  }
}

template <int Type>
constexpr kiln::gemm::TileFn kTileFns[4][4] = {
    {tile<Type, 1, 1>, tile<Type, 1, 2>, tile<Type, 1, 3>, tile<Type, 1, 4>},
    {tile<Type, 2, 1>, tile<Type, 2, 2>, tile<Type, 2, 3>, tile<Type, 2, 4>},
    {tile<Type, 3, 1>, tile<Type, 3, 2>, tile<Type, 3, 3>, tile<Type, 3, 4>},
    {tile<Type, 4, 1>, tile<Type, 4, 2>, tile<Type, 4, 3>, tile<Type, 4, 4>},
};

template <int Type>
constexpr void copy_tiles(kiln::gemm::TileFn (&dst)[4][4]) {
  for (int r = 0; r < 4; ++r) {
    for (int s = 0; s < 4; ++s) dst[r][s] = kTileFns<Type>[r][s];
  }
}

constexpr kiln::gemm::Kernels make_kernels() {
  kiln::gemm::Kernels k{};
  k.name = KILN_GEMM_NAME;
  copy_tiles<kiln::gemm::kWeightF32>(k.tiles[kiln::gemm::kWeightF32]);
  copy_tiles<kiln::gemm::kWeightBf16>(k.tiles[kiln::gemm::kWeightBf16]);
  copy_tiles<kiln::gemm::kWeightF16>(k.tiles[kiln::gemm::kWeightF16]);
  copy_tiles<kiln::gemm::kWeightI8>(k.tiles[kiln::gemm::kWeightI8]);
  k.widen[kiln::gemm::kWeightF32] = widen<kiln::gemm::kWeightF32>;
  k.widen[kiln::gemm::kWeightBf16] = widen<kiln::gemm::kWeightBf16>;
  k.widen[kiln::gemm::kWeightF16] = widen<kiln::gemm::kWeightF16>;
  k.widen[kiln::gemm::kWeightI8] = widen<kiln::gemm::kWeightI8>;
  for (int r = 0; r < 4; ++r) k.tile_cols[r] = kTileColsAtRows[r];
  k.lanes = kLanes;
  k.panel_rows = kPanelRows;
  set_panels<kPanelRows>(k.panels);
  return k;
}

// NOTE: constexpr, so the table is data in the library's image: no code compiled for this level
// runs when the library loads on a CPU without it.
constexpr kiln::gemm::Kernels kTable = make_kernels();

}  // namespace

const kiln::gemm::Kernels& kiln::gemm::KILN_GEMM_TABLE() { return kTable; }
