// kiln_kernel_bench: times Kiln's CUDA kernels with CUDA events (warm-up, then the median of
// many runs; input sets rotated so that repeated runs do not hit in L2) and prints TFLOP/s for
// prefill attention and TB/s (bytes that must move, read + written) for the memory-bound ops,
// next to a device-to-device copy measured in the same run.
//
//   kiln_kernel_bench [--only NAME] [--reps N]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kiln_cuda.h"
#include "kiln_sampling.h"

namespace {

#define CUDA_OK(call)                                                                                   \
  do {                                                                                                  \
    cudaError_t e_ = (call);                                                                            \
    if (e_ != cudaSuccess) {                                                                            \
      std::fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                     \
    }                                                                                                   \
  } while (0)

#define KILN_OK(call)                                                                                   \
  do {                                                                                                  \
    int s_ = (call);                                                                                    \
    if (s_ != 0) {                                                                                      \
      std::fprintf(stderr, "FATAL %s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #call, s_, kiln_cuda_last_error()); \
      std::exit(2);                                                                                     \
    }                                                                                                   \
  } while (0)

int reps = 50;
std::string only;
size_t l2_bytes = 50u << 20;
std::mt19937_64 rng(1234);

struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buf(size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&p, n)); }
  ~Buf() { cudaFree(p); }
  Buf(const Buf&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(p); }
};

// Random bf16 / fp16 values in [-1, 1) (bit pattern built on the host, uploaded once).
void fill_random(const Buf& b, int dtype) {
  std::vector<uint16_t> h(b.bytes / 2);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto& x : h) {
    const float f = u(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (dtype == KILN_CUDA_BF16) {
      x = static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    } else {  // fp16 of a value in [-1, 1): exponent rebias, mantissa truncated (fine for timing)
      const uint32_t sign = (bits >> 16) & 0x8000u;
      const int exp = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
      x = exp <= 0 ? static_cast<uint16_t>(sign) : static_cast<uint16_t>(sign | (exp << 10) | ((bits >> 13) & 0x3ff));
    }
  }
  CUDA_OK(cudaMemcpy(b.p, h.data(), b.bytes, cudaMemcpyHostToDevice));
}

// Plausible e4m3 row scales (a row's amax / 448 for values of magnitude about 1).
void fill_scales(const Buf& b) {
  std::vector<float> h(b.bytes / 4);
  std::uniform_real_distribution<float> u(0.5f / 448, 2.0f / 448);
  for (auto& x : h) x = u(rng);
  CUDA_OK(cudaMemcpy(b.p, h.data(), b.bytes, cudaMemcpyHostToDevice));
}

// Median milliseconds of fn(i) over `reps` runs after warm-up; fn gets the run index so it can
// rotate through input sets.
double time_ms(const std::function<void(int)>& fn) {
  for (int i = 0; i < 5; ++i) fn(i);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> ev(2 * reps);
  for (auto& e : ev) CUDA_OK(cudaEventCreate(&e));
  for (int i = 0; i < reps; ++i) {
    CUDA_OK(cudaEventRecord(ev[2 * i]));
    fn(i);
    CUDA_OK(cudaEventRecord(ev[2 * i + 1]));
  }
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) CUDA_OK(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
  for (auto& e : ev) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return ms[reps / 2];
}

int sets_for(size_t bytes_per_set) {  // enough input sets to exceed twice the L2
  const size_t want = 2 * l2_bytes;
  const int n = static_cast<int>((want + bytes_per_set - 1) / bytes_per_set);
  return std::max(1, std::min(n, 8));
}

bool wanted(const char* name) { return only.empty() || std::string(name).find(only) != std::string::npos; }

double copy_tbps = 0;

void bench_copy() {
  const size_t bytes = size_t(1) << 30;
  Buf a(bytes), b(bytes);
  CUDA_OK(cudaMemset(a.p, 1, bytes));
  const double ms = time_ms([&](int) { CUDA_OK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); });
  copy_tbps = 2.0 * bytes / (ms * 1e-3) / 1e12;
  std::printf("%-58s %9.3f ms %8.3f TB/s  (1 GiB read + 1 GiB written)\n", "copy (cudaMemcpyAsync D2D)", ms, copy_tbps);
}

// Paged cache with a random block table for `seqs` sequences of seq_len tokens each.
struct PagedCache {
  int64_t block_size, blocks_per_seq, num_blocks;
  std::vector<int32_t> tables;
  PagedCache(int64_t num_seqs, int64_t seq_len, int64_t bs) : block_size(bs) {
    blocks_per_seq = (seq_len + bs - 1) / bs;
    num_blocks = num_seqs * blocks_per_seq;
    tables.resize(num_blocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), rng);
  }
};

// fp8: over an e4m3 cache with row scales (kiln_cuda_attention_prefill_e4m3; random codes, timing only).
void bench_prefill(int64_t seq_len, int64_t heads, int64_t head_dim, int dtype, const char* path, bool fp8 = false) {
  const int64_t bs = 16;
  if (path) setenv("KILN_CUDA_PREFILL", path, 1); else unsetenv("KILN_CUDA_PREFILL");
  PagedCache cache(1, seq_len, bs);
  const int64_t row = heads * head_dim;
  const size_t q_bytes = seq_len * row * 2, kv_bytes = cache.num_blocks * bs * row * (fp8 ? 1 : 2);
  const size_t scale_bytes = cache.num_blocks * bs * heads * 4;
  const int sets = sets_for(2 * q_bytes + 2 * kv_bytes);
  std::vector<Buf*> bufs;
  for (int s = 0; s < sets; ++s) {
    bufs.push_back(new Buf(q_bytes));
    bufs.push_back(new Buf(kv_bytes));
    bufs.push_back(new Buf(kv_bytes));
    bufs.push_back(new Buf(q_bytes));
    bufs.push_back(new Buf(scale_bytes));
    bufs.push_back(new Buf(scale_bytes));
    for (int j = 0; j < 3; ++j) fill_random(*bufs[bufs.size() - 6 + j], KILN_CUDA_BF16);
    fill_scales(*bufs[bufs.size() - 2]);
    fill_scales(*bufs[bufs.size() - 1]);
  }
  Buf tab(cache.tables.size() * 4), qs(8), lens(4);
  CUDA_OK(cudaMemcpy(tab.p, cache.tables.data(), tab.bytes, cudaMemcpyHostToDevice));
  const int32_t qs_h[2] = {0, static_cast<int32_t>(seq_len)}, len_h = static_cast<int32_t>(seq_len);
  CUDA_OK(cudaMemcpy(qs.p, qs_h, 8, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(lens.p, &len_h, 4, cudaMemcpyHostToDevice));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const double ms = time_ms([&](int i) {
    Buf** b = &bufs[6 * (i % sets)];
    if (fp8)
      KILN_OK(kiln_cuda_attention_prefill_e4m3(b[3]->p, row, b[0]->p, row, b[1]->as<uint8_t>(), b[2]->as<uint8_t>(),
                                               b[4]->as<float>(), b[5]->as<float>(), tab.as<int32_t>(),
                                               cache.blocks_per_seq, qs.as<int32_t>(), lens.as<int32_t>(), 1, seq_len,
                                               seq_len, heads, heads, head_dim, bs, cache.num_blocks, scale, dtype,
                                               nullptr));
    else
      KILN_OK(kiln_cuda_attention_prefill(b[3]->p, row, b[0]->p, row, b[1]->p, b[2]->p, tab.as<int32_t>(),
                                          cache.blocks_per_seq, qs.as<int32_t>(), lens.as<int32_t>(), 1, seq_len,
                                          seq_len, heads, heads, head_dim, bs, cache.num_blocks, scale, dtype, nullptr));
  });
  const double flops = 4.0 * seq_len * seq_len * head_dim * heads / 2.0;  // causal: half of 4*S^2*D*H
  char name[160];
  std::snprintf(name, sizeof(name), "prefill causal B=1 H=%lld S=%lld D=%lld %s bs16%s [%s]", (long long)heads,
                (long long)seq_len, (long long)head_dim, dtype == KILN_CUDA_BF16 ? "bf16" : "fp16",
                fp8 ? " e4m3 cache" : "", fp8 ? "mma" : (path ? path : "auto"));
  std::printf("%-58s %9.3f ms %8.1f TFLOP/s\n", name, ms, flops / (ms * 1e-3) / 1e12);
  for (Buf* b : bufs) delete b;
  unsetenv("KILN_CUDA_PREFILL");
}

// fp8: over an e4m3 cache with row scales (kiln_cuda_attention_decode_e4m3; random codes, timing only).
void bench_decode(int64_t batch, int64_t seq_len, int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t bs,
                  bool fp8 = false, int dtype = KILN_CUDA_BF16) {
  PagedCache cache(batch, seq_len, bs);
  const int64_t kv_row = kv_heads * head_dim, q_row = q_heads * head_dim;
  const size_t kv_bytes = cache.num_blocks * bs * kv_row * (fp8 ? 1 : 2);
  const size_t scale_bytes = cache.num_blocks * bs * kv_heads * 4;
  const int sets = sets_for(2 * kv_bytes);
  std::vector<Buf*> kv, scales;
  for (int s = 0; s < 2 * sets; ++s) {
    kv.push_back(new Buf(kv_bytes));
    fill_random(*kv.back(), dtype);
    scales.push_back(new Buf(scale_bytes));
    fill_scales(*scales.back());
  }
  Buf q(batch * q_row * 2), out(batch * q_row * 2), tab(cache.tables.size() * 4), lens(batch * 4);
  fill_random(q, dtype);
  CUDA_OK(cudaMemcpy(tab.p, cache.tables.data(), tab.bytes, cudaMemcpyHostToDevice));
  std::vector<int32_t> lens_h(batch, static_cast<int32_t>(seq_len));
  CUDA_OK(cudaMemcpy(lens.p, lens_h.data(), lens.bytes, cudaMemcpyHostToDevice));
  const int64_t ws_bytes = kiln_cuda_attention_decode_workspace_size(batch, q_heads, kv_heads, head_dim, seq_len);
  Buf ws(ws_bytes > 0 ? ws_bytes : 256);
  CUDA_OK(cudaMemset(ws.p, 0, ws.bytes));  // the split counters start at zero
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const double ms = time_ms([&](int i) {
    const int s = i % sets;
    if (fp8)
      KILN_OK(kiln_cuda_attention_decode_e4m3(out.p, q_row, q.p, q_row, kv[2 * s]->as<uint8_t>(),
                                              kv[2 * s + 1]->as<uint8_t>(), scales[2 * s]->as<float>(),
                                              scales[2 * s + 1]->as<float>(), tab.as<int32_t>(), cache.blocks_per_seq,
                                              lens.as<int32_t>(), batch, seq_len, q_heads, kv_heads, head_dim, bs,
                                              cache.num_blocks, scale, ws.p, ws_bytes, dtype, nullptr));
    else
      KILN_OK(kiln_cuda_attention_decode(out.p, q_row, q.p, q_row, kv[2 * s]->p, kv[2 * s + 1]->p, tab.as<int32_t>(),
                                         cache.blocks_per_seq, lens.as<int32_t>(), batch, seq_len, q_heads, kv_heads,
                                         head_dim, bs, cache.num_blocks, scale, ws.p, ws_bytes, dtype, nullptr));
  });
  // K and V read once (an FP8 cache: codes and row scales).
  const double bytes = 2.0 * batch * seq_len * (fp8 ? kv_row + kv_heads * 4 : kv_row * 2);
  char name[160];
  std::snprintf(name, sizeof(name), "decode B=%lld L=%lld h%lld/%lld D=%lld %s bs%lld%s", (long long)batch,
                (long long)seq_len, (long long)q_heads, (long long)kv_heads, (long long)head_dim,
                dtype == KILN_CUDA_BF16 ? "bf16" : "fp16", (long long)bs, fp8 ? " e4m3 cache" : "");
  std::printf("%-58s %9.3f ms %8.3f TB/s  (%.0f%% of copy)\n", name, ms, bytes / (ms * 1e-3) / 1e12,
              100.0 * bytes / (ms * 1e-3) / 1e12 / copy_tbps);
  for (Buf* b : kv) delete b;
  for (Buf* b : scales) delete b;
}

void report_bw(const char* name, double ms, double bytes) {
  const double tbps = bytes / (ms * 1e-3) / 1e12;
  std::printf("%-58s %9.3f ms %8.3f TB/s  (%.0f%% of copy)\n", name, ms, tbps, 100.0 * tbps / copy_tbps);
}

void bench_rms_norm(int64_t rows, int64_t dim, bool residual) {
  const int dtype = KILN_CUDA_BF16;
  const size_t bytes = rows * dim * 2;
  const int sets = sets_for(3 * bytes);
  std::vector<Buf*> b;
  for (int s = 0; s < 3 * sets; ++s) {
    b.push_back(new Buf(bytes));
    fill_random(*b.back(), dtype);
  }
  Buf w(dim * 2);
  fill_random(w, dtype);
  // The residual rotates too, so repeated adds stay bounded: inputs are re-randomised per set.
  const double ms = time_ms([&](int i) {
    const int s = i % sets;
    KILN_OK(kiln_cuda_rms_norm(b[3 * s + 2]->p, dim, b[3 * s]->p, dim, residual ? b[3 * s + 1]->p : nullptr, dim, w.p,
                               rows, dim, 1e-6f, dtype, nullptr));
  });
  char name[160];
  std::snprintf(name, sizeof(name), "rms_norm %lldx%lld bf16%s", (long long)rows, (long long)dim,
                residual ? " +residual" : "");
  report_bw(name, ms, (residual ? 4.0 : 2.0) * bytes);
  for (Buf* x : b) delete x;
}

// fp8: into an e4m3 cache with row scales (kiln_cuda_rotary_write_kv_cache_e4m3).
void bench_rotary_write(int64_t tokens, int64_t q_heads, int64_t kv_heads, int64_t head_dim, bool fp8 = false) {
  const int dtype = KILN_CUDA_BF16;
  const int64_t max_pos = 8192;
  const size_t q_bytes = tokens * q_heads * head_dim * 2, kv_bytes = tokens * kv_heads * head_dim * 2;
  const size_t cache_bytes = fp8 ? kv_bytes / 2 : kv_bytes, scale_bytes = tokens * kv_heads * 4;
  const int sets = sets_for(q_bytes + 2 * kv_bytes + 2 * cache_bytes);
  std::vector<Buf*> b;
  for (int s = 0; s < sets; ++s) {
    b.push_back(new Buf(q_bytes));
    for (int j = 0; j < 2; ++j) b.push_back(new Buf(kv_bytes));     // k, v
    for (int j = 0; j < 2; ++j) b.push_back(new Buf(cache_bytes));  // k_cache, v_cache
    for (int j = 0; j < 2; ++j) b.push_back(new Buf(scale_bytes));  // their scales (FP8)
    for (int j = 0; j < 3; ++j) fill_random(*b[7 * s + j], dtype);
  }
  std::vector<int32_t> slots(tokens), pos(tokens);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  for (auto& p : pos) p = static_cast<int32_t>(rng() % max_pos);
  std::vector<float> cs(max_pos * head_dim);
  for (auto& c : cs) c = std::uniform_real_distribution<float>(-1, 1)(rng);
  Buf dslots(tokens * 4), dpos(tokens * 4), dcs(cs.size() * 4);
  CUDA_OK(cudaMemcpy(dslots.p, slots.data(), dslots.bytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dpos.p, pos.data(), dpos.bytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dcs.p, cs.data(), dcs.bytes, cudaMemcpyHostToDevice));
  const int64_t qr = q_heads * head_dim, kr = kv_heads * head_dim;
  const double ms = time_ms([&](int i) {
    Buf** x = &b[7 * (i % sets)];
    if (fp8)
      KILN_OK(kiln_cuda_rotary_write_kv_cache_e4m3(x[0]->p, qr, q_heads, x[1]->p, kr, x[2]->p, kr, x[3]->as<uint8_t>(),
                                                   x[4]->as<uint8_t>(), x[5]->as<float>(), x[6]->as<float>(),
                                                   dslots.as<int32_t>(), dpos.as<int32_t>(), dcs.as<float>(), max_pos,
                                                   1, tokens, kv_heads, head_dim, tokens, dtype, nullptr));
    else
      KILN_OK(kiln_cuda_rotary_write_kv_cache(x[0]->p, qr, q_heads, x[1]->p, kr, x[2]->p, kr, x[3]->p, x[4]->p,
                                              dslots.as<int32_t>(), dpos.as<int32_t>(), dcs.as<float>(), max_pos, 1,
                                              tokens, kv_heads, head_dim, tokens, dtype, nullptr));
  });
  char name[160];
  std::snprintf(name, sizeof(name), "rotary+kv write T=%lld h%lld/%lld D=%lld bf16 neox%s", (long long)tokens,
                (long long)q_heads, (long long)kv_heads, (long long)head_dim, fp8 ? " e4m3 cache" : "");
  // q read + written, k and v read, both cache rows (and FP8 scales) written, cos/sin rows read.
  report_bw(name, ms, 2.0 * q_bytes + 2.0 * kv_bytes + 2.0 * cache_bytes + (fp8 ? 2.0 * scale_bytes : 0.0) +
                          tokens * head_dim * 4.0);
  for (Buf* x : b) delete x;
}

void bench_silu(int64_t tokens, int64_t inter) {
  const int dtype = KILN_CUDA_BF16;
  const size_t in_bytes = tokens * 2 * inter * 2, out_bytes = tokens * inter * 2;
  const int sets = sets_for(in_bytes + out_bytes);
  std::vector<Buf*> b;
  for (int s = 0; s < sets; ++s) {
    b.push_back(new Buf(in_bytes));
    fill_random(*b.back(), dtype);
    b.push_back(new Buf(out_bytes));
  }
  const double ms = time_ms([&](int i) {
    const int s = i % sets;
    KILN_OK(kiln_cuda_silu_and_mul(b[2 * s + 1]->p, b[2 * s]->p, tokens, inter, dtype, nullptr));
  });
  char name[160];
  std::snprintf(name, sizeof(name), "silu_and_mul %lldx%lld bf16", (long long)tokens, (long long)inter);
  report_bw(name, ms, static_cast<double>(in_bytes + out_bytes));
  for (Buf* x : b) delete x;
}

}  // namespace

// Skinny products of decode: the weights stream once, so bytes = weights + inputs + outputs.
// Gated: the gate/up product with SiLU-and-mul, reading 2n weight rows.
void bench_gemv(const char* what, int64_t m, int64_t n, int64_t k, bool gated, bool f32_out) {
  const size_t w_bytes = static_cast<size_t>(gated ? 2 * n : n) * k * 2;
  const int sets = sets_for(w_bytes);
  std::vector<Buf*> w;
  for (int s = 0; s < sets; ++s) {
    w.push_back(new Buf(w_bytes));
    fill_random(*w.back(), KILN_CUDA_BF16);
  }
  Buf x(m * k * 2), out(m * n * (f32_out ? 4 : 2));
  fill_random(x, KILN_CUDA_BF16);
  const double ms = time_ms([&](int i) {
    KILN_OK(kiln_cuda_gemv(out.p, n, f32_out ? KILN_CUDA_F32 : KILN_CUDA_BF16, x.p, k, gated ? 1 : 0,
                           w[i % sets]->p, nullptr, m, n, k, KILN_CUDA_BF16, nullptr));
  });
  char name[160];
  std::snprintf(name, sizeof(name), "gemv %s M=%lld N=%lld K=%lld%s bf16", what, (long long)m, (long long)n,
                (long long)k, gated ? " gated" : "");
  report_bw(name, ms, static_cast<double>(w_bytes) + m * k * 2.0 + m * n * (f32_out ? 4.0 : 2.0));
  for (Buf* b : w) delete b;
}

// The narrow FP8 product (Hopper) alone on random e4m3 weights, weight sets rotated past the L2;
// TB/s counts the weights' bytes only. splits: KILN_CUDA_F8_NARROW_MAX_SPLITS (0: the plan's).
void bench_gemm_f8_narrow(const char* what, int64_t m, int64_t n, int64_t k, bool gated, int splits) {
  if (!kiln_cuda_supports_gemm_f8_narrow()) return;
  if (splits > 0) setenv("KILN_CUDA_F8_NARROW_MAX_SPLITS", std::to_string(splits).c_str(), 1);
  else unsetenv("KILN_CUDA_F8_NARROW_MAX_SPLITS");
  const size_t w_bytes = static_cast<size_t>(gated ? 2 * n : n) * k;
  const int sets = sets_for(w_bytes);
  std::vector<Buf*> w;
  for (int s = 0; s < sets; ++s) {
    w.push_back(new Buf(w_bytes));
    fill_random(*w.back(), KILN_CUDA_BF16);  // random bytes: timing only
  }
  Buf xq(m * k), scales(static_cast<size_t>(2 * n + m) * 4), out(m * n * 2);
  fill_random(xq, KILN_CUDA_BF16);
  CUDA_OK(cudaMemset(scales.p, 0, scales.bytes));
  const int64_t ws = kiln_cuda_gemm_f8_narrow_workspace_size(m, n, k, gated ? 1 : 0);
  Buf work(ws > 0 ? ws : 256);
  CUDA_OK(cudaMemset(work.p, 0, work.bytes));
  const double ms = time_ms([&](int i) {
    KILN_OK(kiln_cuda_gemm_f8_narrow(out.p, n, KILN_CUDA_BF16, xq.as<uint8_t>(), scales.as<float>(), gated ? 1 : 0,
                                     w[i % sets]->as<uint8_t>(), scales.as<float>() + m, nullptr, m, n, k,
                                     KILN_CUDA_BF16, ws > 0 ? work.p : nullptr, ws, nullptr));
  });
  char name[160];
  std::snprintf(name, sizeof(name), "gemm_f8_narrow %s M=%lld N=%lld K=%lld%s splits<=%d ws=%lldKB", what,
                (long long)m, (long long)n, (long long)k, gated ? " gated" : "", splits, (long long)(ws >> 10));
  report_bw(name, ms, static_cast<double>(w_bytes));
  for (Buf* b : w) delete b;
  unsetenv("KILN_CUDA_F8_NARROW_MAX_SPLITS");
}

// The sampler alone on fp32 logits [batch, vocab] (logits like a model's: normal, sd 2), next to
// the greedy argmax of the same logits; TB/s counts one read of the logits.
void bench_sample(int64_t batch, int64_t vocab) {
  const size_t bytes = static_cast<size_t>(batch * vocab) * 4;
  Buf logits(bytes), ids(batch * 4), workspace(kiln_cuda_argmax_workspace_size(batch, vocab));
  {
    std::vector<float> h(batch * vocab);
    std::normal_distribution<float> n(0.0f, 2.0f);
    for (auto& x : h) x = n(rng);
    CUDA_OK(cudaMemcpy(logits.p, h.data(), bytes, cudaMemcpyHostToDevice));
  }
  CUDA_OK(cudaMemset(workspace.p, 0, workspace.bytes));
  const double argmax_ms = time_ms([&](int) {
    KILN_OK(kiln_cuda_argmax(logits.p, vocab, KILN_CUDA_F32, batch, vocab, ids.as<int32_t>(), nullptr, workspace.p,
                             workspace.bytes, nullptr));
  });
  std::printf("%-58s %9.3f ms %8.3f TB/s\n", ("argmax " + std::to_string(batch) + "x" + std::to_string(vocab)).c_str(),
              argmax_ms, bytes / (argmax_ms * 1e-3) / 1e12);
  struct Config { const char* name; float t; int32_t k; double p; float min_p; bool penalties; };
  const Config configs[] = {{"greedy (sampler)", 0.0f, 0, 1.0, 0.0f, false}, {"t=1", 1.0f, 0, 1.0, 0.0f, false},
                            {"t=0.8 top_p=0.95", 0.8f, 0, 0.95, 0.0f, false},
                            {"t=0.7 top_k=50 top_p=0.9", 0.7f, 50, 0.9, 0.0f, false},
                            {"t=1 min_p=0.05", 1.0f, 0, 1.0, 0.05f, false},
                            {"t=0.8 top_p=0.95 penalties", 0.8f, 0, 0.95, 0.0f, true}};
  Buf table(static_cast<size_t>(batch * vocab) * 4);
  CUDA_OK(cudaMemset(table.p, 0, table.bytes));
  for (const Config& c : configs) {
    std::vector<int32_t> rows(batch * KILN_SAMPLE_ROW_WORDS, 0);
    for (int64_t b = 0; b < batch; ++b) {
      int32_t* w = &rows[b * KILN_SAMPLE_ROW_WORDS];
      auto word = [](float f) { int32_t x; std::memcpy(&x, &f, 4); return x; };
      w[KILN_SAMPLE_TEMPERATURE] = word(c.t);
      w[KILN_SAMPLE_TOP_K] = c.k;
      w[KILN_SAMPLE_TOP_P] = c.p < 1.0 ? static_cast<int32_t>(static_cast<uint32_t>(c.p * 4294967296.0)) : 0;
      w[KILN_SAMPLE_MIN_P] = word(c.min_p);
      w[KILN_SAMPLE_REPETITION] = word(c.penalties ? 1.1f : 1.0f);
      w[KILN_SAMPLE_PRESENCE] = word(c.penalties ? 0.5f : 0.0f);
      w[KILN_SAMPLE_FREQUENCY] = word(c.penalties ? 0.5f : 0.0f);
      w[KILN_SAMPLE_PENALTY_ROW] = c.penalties ? static_cast<int32_t>(b) : -1;
      w[KILN_SAMPLE_FLAGS] = c.penalties ? KILN_SAMPLE_PENALIZE : 0;
      w[KILN_SAMPLE_LOGPROBS] = -1;
      const uint64_t r = rng() >> 11;
      w[KILN_SAMPLE_RANDOM_LO] = static_cast<int32_t>(r & 0xffffffffu);
      w[KILN_SAMPLE_RANDOM_HI] = static_cast<int32_t>(r >> 32);
    }
    Buf drows(rows.size() * 4);
    CUDA_OK(cudaMemcpy(drows.p, rows.data(), drows.bytes, cudaMemcpyHostToDevice));
    const double ms = time_ms([&](int) {
      KILN_OK(kiln_cuda_sample(logits.as<float>(), batch, vocab, drows.as<int32_t>(),
                               c.penalties ? table.as<uint32_t>() : nullptr, c.penalties ? batch : 0, ids.as<int32_t>(),
                               nullptr, nullptr));
    });
    const std::string name = "sample " + std::to_string(batch) + "x" + std::to_string(vocab) + " " + c.name;
    std::printf("%-58s %9.3f ms %8.3f TB/s\n", name.c_str(), ms, bytes / (ms * 1e-3) / 1e12);
  }
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else { std::fprintf(stderr, "usage: %s [--only NAME] [--reps N]\n", argv[0]); return 2; }
  }
  if (kiln_cuda_device_count() == 0) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  l2_bytes = prop.l2CacheSize;
  std::printf("kiln_kernel_bench: %s, %d SMs, L2 %d MB, median of %d runs\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, reps);
  bench_copy();
  if (wanted("decode")) {
    bench_decode(64, 2048, 32, 8, 128, 16);
    bench_decode(64, 2048, 32, 8, 128, 32);
    bench_decode(1, 32768, 32, 8, 128, 16);
    bench_decode(256, 512, 32, 8, 128, 16);
    for (int64_t batch : {64, 256, 768}) {  // bf16 and FP8 caches side by side
      bench_decode(batch, 512, 32, 8, 128, 16);
      bench_decode(batch, 512, 32, 8, 128, 16, true);
    }
    bench_decode(256, 512, 32, 8, 128, 16, false, KILN_CUDA_F16);
    bench_decode(256, 512, 32, 8, 128, 16, true, KILN_CUDA_F16);
    bench_decode(64, 2048, 32, 8, 128, 16, true);
    bench_decode(1, 32768, 32, 8, 128, 16, true);
  }
  if (wanted("prefill_e4m3")) {
    for (int64_t len : {1024, 4096}) {
      bench_prefill(len, 32, 128, KILN_CUDA_BF16, "mma");
      bench_prefill(len, 32, 128, KILN_CUDA_BF16, nullptr, true);
    }
  }
  if (wanted("prefill")) {
    for (const char* path : {static_cast<const char*>(nullptr), "sm90v1", "sm90v4", "mma"}) {
      bench_prefill(4096, 32, 128, KILN_CUDA_BF16, path);
      bench_prefill(1024, 32, 128, KILN_CUDA_BF16, path);
      bench_prefill(16384, 32, 128, KILN_CUDA_BF16, path);
      bench_prefill(4096, 32, 64, KILN_CUDA_BF16, path);
    }
  }
  if (wanted("rms_norm")) {
    bench_rms_norm(16384, 4096, true);
    bench_rms_norm(16384, 4096, false);
  }
  if (wanted("rotary")) {
    bench_rotary_write(16384, 32, 8, 128);
    bench_rotary_write(16384, 32, 8, 128, true);
    bench_rotary_write(256, 32, 8, 128);
    bench_rotary_write(256, 32, 8, 128, true);
  }
  if (wanted("silu")) bench_silu(8192, 14336);
  if (wanted("gemv")) {
    for (int64_t m : {1, 4}) {
      bench_gemv("1B qkv", m, 3072, 2048, false, false);
      bench_gemv("1B o", m, 2048, 2048, false, false);
      bench_gemv("1B gate_up+silu", m, 8192, 2048, true, false);
      bench_gemv("1B down", m, 2048, 8192, false, false);
      bench_gemv("1B lm_head", m, 128256, 2048, false, true);
      bench_gemv("8B qkv", m, 6144, 4096, false, false);
      bench_gemv("8B o", m, 4096, 4096, false, false);
      bench_gemv("8B gate_up+silu", m, 14336, 4096, true, false);
      bench_gemv("8B down", m, 4096, 14336, false, false);
    }
  }
  if (wanted("gemm_f8_narrow")) {
    for (int64_t m : {32, 64, 128}) {
      for (int splits : {0, 1, 2, 4}) {
        bench_gemm_f8_narrow("8B qkv", m, 6144, 4096, false, splits);
        bench_gemm_f8_narrow("8B o", m, 4096, 4096, false, splits);
        bench_gemm_f8_narrow("8B down", m, 4096, 14336, false, splits);
      }
      bench_gemm_f8_narrow("8B gate_up+silu", m, 14336, 4096, true, 0);
    }
  }
  if (wanted("sample")) {
    bench_sample(256, 128256);
    bench_sample(64, 128256);
    bench_sample(1, 128256);
  }
  return 0;
}
