// Times libkiln_cpu's GEMM on the products of a Llama decoder step, at every kernel level the CPU
// runs (or one), for decode (a few activation rows: bound by reading the weights) and prompt
// (many rows: bound by arithmetic) sizes, bf16 and int8 weights.
//
//   cmake --build BUILD --target kiln_cpu_gemm_bench
//   BUILD/native/kiln_cpu_gemm_bench [--level 4|3|0] [--threads N] [--shape 1b|154m] [--rows 1,4,16,128]
//
// A "step" runs every layer's q/k/v, o, gate/up and down products and the LM head once, as decode
// does, over weights allocated apart (more than the last-level cache holds, so they stream from
// memory as a model's do). It prints ms per step, the weights' bytes read per second and GFLOP/s.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kiln_cpu.h"

namespace {

struct Shape {
  const char* name;
  int layers;
  int64_t hidden, intermediate, qkv_rows, vocab;
};

constexpr Shape kShapes[] = {
    {"1b", 16, 2048, 8192, 3072, 128256},   // Llama-3.2-1B
    {"154m", 8, 1024, 4096, 1536, 32000},   // scripts/make_bench_model.py --shape llama-154m
};

struct Matrix {
  int64_t n, k;
  std::vector<uint16_t> bf16;  // [n, k]
  std::vector<int8_t> i8;      // [n, k]
  std::vector<float> scales;   // [n]
};

std::vector<int> parse_list(const char* text) {
  std::vector<int> values;
  for (const char* p = text; *p != '\0';) {
    values.push_back(std::atoi(p));
    const char* comma = std::strchr(p, ',');
    if (comma == nullptr) break;
    p = comma + 1;
  }
  return values;
}

double run_step(const std::vector<Matrix>& matrices, int dtype, int64_t m, const float* x, float* out) {
  const auto start = std::chrono::steady_clock::now();
  for (const Matrix& w : matrices) {
    const int status = dtype == KILN_I8
        ? kiln_cpu_gemm_i8(out, w.n, x, w.k, w.i8.data(), w.scales.data(), nullptr, 0, m, w.n, w.k)
        : kiln_cpu_gemm(out, w.n, x, w.k, w.bf16.data(), KILN_BF16, nullptr, 0, m, w.n, w.k);
    if (status != KILN_OK) {
      std::fprintf(stderr, "gemm failed: %s\n", kiln_last_error());
      std::exit(1);
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int only_level = -2;
  int threads = 2;
  const Shape* shape = &kShapes[0];
  std::vector<int> row_counts = {1, 4, 16, 128};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--level") {
      only_level = std::atoi(argv[i + 1]);
    } else if (flag == "--threads") {
      threads = std::atoi(argv[i + 1]);
    } else if (flag == "--rows") {
      row_counts = parse_list(argv[i + 1]);
    } else if (flag == "--shape") {
      shape = nullptr;
      for (const Shape& s : kShapes) {
        if (std::strcmp(s.name, argv[i + 1]) == 0) shape = &s;
      }
      if (shape == nullptr) {
        std::fprintf(stderr, "unknown shape %s (1b or 154m)\n", argv[i + 1]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--level 4|3|0] [--threads N] [--shape 1b|154m] [--rows 1,4,16,128]\n", argv[0]);
      return 2;
    }
  }
  kiln_cpu_set_num_threads(threads);

  std::vector<Matrix> matrices;
  auto add = [&](int64_t n, int64_t k) {
    Matrix w{n, k, std::vector<uint16_t>(n * k), std::vector<int8_t>(n * k), std::vector<float>(n)};
    uint32_t state = 12345;
    for (int64_t i = 0; i < n * k; ++i) {
      state = state * 1664525u + 1013904223u;
      w.bf16[i] = static_cast<uint16_t>(0x3c00u + (state >> 25));  // small positive bf16 values
      w.i8[i] = static_cast<int8_t>(state >> 24);
    }
    for (int64_t r = 0; r < n; ++r) w.scales[r] = 1.0f / 127;
    matrices.push_back(std::move(w));
  };
  for (int l = 0; l < shape->layers; ++l) {
    add(shape->qkv_rows, shape->hidden);
    add(shape->hidden, shape->hidden);
    add(2 * shape->intermediate, shape->hidden);
    add(shape->hidden, shape->intermediate);
  }
  add(shape->vocab, shape->hidden);
  double flops_per_row = 0, weights = 0;
  int64_t widest_k = 0, widest_n = 0;
  for (const Matrix& w : matrices) {
    flops_per_row += 2.0 * w.n * w.k;
    weights += static_cast<double>(w.n) * w.k;
    widest_k = w.k > widest_k ? w.k : widest_k;
    widest_n = w.n > widest_n ? w.n : widest_n;
  }
  int max_rows = 1;
  for (int rows : row_counts) max_rows = rows > max_rows ? rows : max_rows;
  std::vector<float> x(static_cast<size_t>(max_rows * widest_k), 0.01f);
  std::vector<float> out(static_cast<size_t>(max_rows * widest_n));

  std::printf("shape %s: %d layers, %.0f M weights, %d threads\n", shape->name, shape->layers, weights / 1e6, threads);
  for (int level : {4, 3, 0}) {
    if (only_level != -2 && level != only_level) continue;
    if (kiln_cpu_set_gemm_level(level) != KILN_OK) continue;
    for (int dtype : {KILN_BF16, KILN_I8}) {
      for (int rows : row_counts) {
        run_step(matrices, dtype, rows, x.data(), out.data());  // warm-up
        const int steps = rows >= 64 ? 2 : 10;
        double best = 1e30;
        for (int s = 0; s < steps; ++s) {
          const double t = run_step(matrices, dtype, rows, x.data(), out.data());
          best = t < best ? t : best;
        }
        const double bytes = weights * (dtype == KILN_I8 ? 1 : 2);
        std::printf("%-20s %-4s rows %4d: %8.2f ms/step  %6.1f GB/s of weights  %6.1f GFLOP/s  (best of %d)\n",
                    kiln_cpu_gemm_kernels(), dtype == KILN_I8 ? "int8" : "bf16", rows, best * 1e3,
                    bytes / best / 1e9, flops_per_row * rows / best / 1e9, steps);
      }
    }
  }
  return 0;
}
