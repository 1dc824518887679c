// kiln_op_tests: every CUDA op against the CPU twin (libkiln_cpu, fp32) on the same fresh random
// inputs, in bf16 and fp16. An output passes when it has no NaN / unwritten element and its max
// error against the fp32 reference is at most twice that of the same op done plainly in the low
// precision, plus a small slack (flash-attention's rule). Outputs are NaN-poisoned before each
// run, unused cache slots hold NaN. Exits 1 on any failure, 0 when all pass or without a GPU.
//
//   kiln_op_tests [--seed N] [--small] [--filter SUBSTRING]
//   --small: reduced sizes (for compute-sanitizer); --filter: only ops whose name contains it.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "harness.h"
#include "kiln_cpu.h"
#include "kiln_cuda.h"
#include "kiln_sampling.h"

namespace {

std::mt19937_64 rng;
bool small_mode = false;
std::string filter;

struct Row {
  std::string op, dtype, shape;
  Comparison c;
  std::string note;
};
std::vector<Row> rows;

const char* dname(int dtype) { return dtype == KILN_CUDA_BF16 ? "bf16" : (dtype == KILN_CUDA_F16 ? "fp16" : "fp32"); }

bool wanted(const std::string& op) { return filter.empty() || op.find(filter) != std::string::npos; }

void record(const std::string& op, int dtype, const std::string& shape, const Comparison& c,
            const std::string& note = "") {
  rows.push_back({op, dname(dtype), shape, c, note});
  std::printf("%-6s %-28s %-5s %-44s max_err %.3e naive %.3e bound %.3e rel_l2 %.2e bad %lld %s\n",
              c.pass ? "PASS" : "FAIL", op.c_str(), dname(dtype), shape.c_str(), c.max_err, c.naive_err, c.bound,
              c.rel_l2, c.bad, note.c_str());
  std::fflush(stdout);
}

void record_status(const std::string& op, int dtype, const std::string& shape, int status) {
  Comparison c;
  c.pass = false;
  c.bad = -1;
  record(op, dtype, shape, c, std::string("status ") + std::to_string(status) + ": " + kiln_cuda_last_error());
}

void sync_or_die(const char* what) {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "FATAL: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}

// Equal bits, or both NaN.
bool same_value(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0; }

std::vector<float> randn(size_t n, int dtype, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = round_to(dist(rng), dtype);
  return v;
}

std::vector<float> rounded(const std::vector<float>& v, int dtype) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = round_to(v[i], dtype);
  return r;
}

std::string shape_str(std::initializer_list<long long> dims) {
  std::string s;
  for (long long d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

constexpr int kDtypes[2] = {KILN_CUDA_BF16, KILN_CUDA_F16};
// The ops that also take fp32 activations (the CUDA backend's fp32 mode).
constexpr int kDtypesAndF32[3] = {KILN_CUDA_BF16, KILN_CUDA_F16, KILN_CUDA_F32};
size_t element_bytes(int dtype) { return dtype == KILN_CUDA_F32 ? 4 : 2; }

// ---- RMSNorm ---------------------------------------------------------------------------------

void test_rms_norm() {
  if (!wanted("rms_norm")) return;
  struct Case { int64_t rows, dim, pad; bool residual; };
  std::vector<Case> cases = {{1, 64, 0, false}, {7, 1000, 0, true}, {113, 4096, 8, true}, {33, 8192, 0, false},
                             {5, 5120, 16, true}, {3, 20000, 0, true}};
  if (small_mode) cases = {{7, 1000, 0, true}, {5, 4096, 8, true}};
  for (int dtype : kDtypesAndF32) {
    for (const Case& cs : cases) {
      const int64_t stride = cs.dim + cs.pad;
      const float eps = 1e-6f;
      auto x = randn(cs.rows * stride, dtype);
      auto res = randn(cs.rows * stride, dtype);
      auto w = randn(cs.dim, dtype, 0.5f);
      // CPU twin (fp32), strided in place on copies.
      std::vector<float> ref_out(cs.rows * stride, NAN), ref_res = res;
      int st = kiln_cpu_rms_norm(ref_out.data(), stride, x.data(), stride, cs.residual ? ref_res.data() : nullptr,
                                 stride, w.data(), KILN_F32, cs.rows, cs.dim, eps);
      if (st != 0) { std::printf("cpu twin failed: %s\n", kiln_last_error()); std::exit(2); }
      // Naive low precision: residual rounded when stored, norm of the stored value, one rounding.
      std::vector<float> naive_out(cs.rows * stride, NAN), naive_res = res;
      for (int64_t r = 0; r < cs.rows; ++r) {
        double ss = 0;
        std::vector<float> src(cs.dim);
        for (int64_t i = 0; i < cs.dim; ++i) {
          float v = x[r * stride + i];
          if (cs.residual) v = naive_res[r * stride + i] = round_to(v + res[r * stride + i], dtype);
          src[i] = v;
          ss += static_cast<double>(v) * v;
        }
        const float inv = 1.0f / std::sqrt(static_cast<float>(ss / cs.dim) + eps);
        for (int64_t i = 0; i < cs.dim; ++i) naive_out[r * stride + i] = round_to(src[i] * inv * w[i], dtype);
      }
      DeviceBuffer dx = upload(x, dtype), dres = upload(res, dtype), dw = upload(w, dtype);
      DeviceBuffer dout(cs.rows * stride * element_bytes(dtype));
      dout.poison();
      st = kiln_cuda_rms_norm(dout.ptr, stride, dx.ptr, stride, cs.residual ? dres.ptr : nullptr, stride, dw.ptr,
                              cs.rows, cs.dim, eps, dtype, nullptr);
      const std::string shape = shape_str({cs.rows, cs.dim}) + (cs.pad ? " stride+" + std::to_string(cs.pad) : "") +
                                (cs.residual ? " +residual" : "");
      if (st != 0) { record_status("rms_norm", dtype, shape, st); continue; }
      sync_or_die("rms_norm");
      auto out = download(dout, cs.rows * stride, dtype);
      // Only the [rows, dim] part is compared; padding columns must stay poisoned.
      for (int64_t r = 0; r < cs.rows; ++r)
        for (int64_t i = cs.dim; i < stride; ++i) ref_out[r * stride + i] = naive_out[r * stride + i] = NAN;
      record("rms_norm", dtype, shape, compare(out, ref_out, naive_out, 1e-6));
      if (cs.residual) {
        auto got_res = download(dres, cs.rows * stride, dtype);
        record("rms_norm.residual", dtype, shape, compare(got_res, ref_res, naive_res, 1e-6));
      }
    }
  }
}

void test_head_rms_norm() {
  if (!wanted("head_rms_norm")) return;
  struct Case { int64_t tokens, heads, head_dim, extra; };  // extra: other heads in the token row (strided)
  std::vector<Case> cases = {{1, 8, 128, 0}, {7, 4, 64, 12}, {113, 16, 128, 8}, {9, 2, 256, 0}};
  if (small_mode) cases = {{7, 4, 64, 12}};
  for (int dtype : kDtypes) {
    for (const Case& cs : cases) {
      const int64_t stride = (cs.heads + cs.extra) * cs.head_dim;
      const float eps = 1e-6f;
      auto x = randn(cs.tokens * stride, dtype, 2.0f);
      auto w = randn(cs.head_dim, dtype, 0.5f);
      // CPU twin: rms_norm over rows = tokens * heads on a contiguous copy.
      std::vector<float> rows_in(cs.tokens * cs.heads * cs.head_dim), rows_out(rows_in.size());
      for (int64_t t = 0; t < cs.tokens; ++t)
        std::copy_n(&x[t * stride], cs.heads * cs.head_dim, &rows_in[t * cs.heads * cs.head_dim]);
      kiln_cpu_rms_norm(rows_out.data(), cs.head_dim, rows_in.data(), cs.head_dim, nullptr, 0, w.data(), KILN_F32,
                        cs.tokens * cs.heads, cs.head_dim, eps);
      std::vector<float> ref = x, naive = x;  // untouched heads must stay as they were
      for (int64_t t = 0; t < cs.tokens; ++t)
        for (int64_t i = 0; i < cs.heads * cs.head_dim; ++i) {
          ref[t * stride + i] = rows_out[t * cs.heads * cs.head_dim + i];
          naive[t * stride + i] = round_to(ref[t * stride + i], dtype);
        }
      DeviceBuffer dx = upload(x, dtype), dw = upload(w, dtype);
      const int st = kiln_cuda_head_rms_norm(dx.ptr, stride, cs.tokens, cs.heads, cs.head_dim, dw.ptr, eps, dtype, nullptr);
      const std::string shape = shape_str({cs.tokens, cs.heads, cs.head_dim}) + (cs.extra ? " strided" : "");
      if (st != 0) { record_status("head_rms_norm", dtype, shape, st); continue; }
      sync_or_die("head_rms_norm");
      record("head_rms_norm", dtype, shape, compare(download(dx, x.size(), dtype), ref, naive, 1e-6));
    }
  }
}

// ---- rotary and the KV-cache write ------------------------------------------------------------------

std::vector<float> make_cos_sin(int64_t max_pos, int64_t head_dim) {
  std::vector<float> t(max_pos * head_dim);
  const int64_t half = head_dim / 2;
  for (int64_t p = 0; p < max_pos; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double freq = std::pow(500000.0, -2.0 * i / head_dim);
      t[p * head_dim + i] = static_cast<float>(std::cos(p * freq));
      t[p * head_dim + half + i] = static_cast<float>(std::sin(p * freq));
    }
  return t;
}

void test_rotary() {
  if (!wanted("rotary")) return;
  struct Case { int64_t tokens, q_heads, kv_heads, head_dim; };
  std::vector<Case> cases = {{1, 8, 2, 128}, {7, 4, 4, 64}, {113, 32, 8, 128}, {17, 8, 1, 256}};
  if (small_mode) cases = {{7, 4, 4, 64}};
  const int64_t max_pos = 5000;
  for (int dtype : kDtypesAndF32) {
    for (int neox = 0; neox < 2; ++neox) {
      for (const Case& cs : cases) {
        const int64_t qs = cs.q_heads * cs.head_dim + 8, ks = cs.kv_heads * cs.head_dim + 8;  // strided rows
        auto q = randn(cs.tokens * qs, dtype), k = randn(cs.tokens * ks, dtype);
        auto cos_sin = make_cos_sin(max_pos, cs.head_dim);
        std::vector<int32_t> pos(cs.tokens);
        for (auto& p : pos) p = static_cast<int32_t>(rng() % max_pos);
        std::vector<float> rq = q, rk = k;
        kiln_cpu_rotary(rq.data(), qs, cs.q_heads, rk.data(), ks, cs.kv_heads, cs.head_dim, pos.data(), cs.tokens,
                        cos_sin.data(), max_pos, neox);
        DeviceBuffer dq = upload(q, dtype), dk = upload(k, dtype), dpos = upload_raw(pos), dcs = upload_raw(cos_sin);
        const int st = kiln_cuda_rotary(dq.ptr, qs, cs.q_heads, dk.ptr, ks, cs.kv_heads, cs.head_dim, dpos.as<int32_t>(),
                                        cs.tokens, dcs.as<float>(), max_pos, neox, dtype, nullptr);
        const std::string shape = shape_str({cs.tokens, cs.q_heads, cs.kv_heads, cs.head_dim}) + (neox ? " neox" : " interleaved");
        if (st != 0) { record_status("rotary", dtype, shape, st); continue; }
        sync_or_die("rotary");
        record("rotary.q", dtype, shape, compare(download(dq, q.size(), dtype), rq, rounded(rq, dtype), 1e-6));
        record("rotary.k", dtype, shape, compare(download(dk, k.size(), dtype), rk, rounded(rk, dtype), 1e-6));
      }
    }
  }
}

// A KV write's slot mapping and positions: distinct slots, every fifth token padding (-1), a
// random position per token.
void kv_write_slots(int64_t tokens, int64_t slots, int64_t max_pos, std::vector<int32_t>& slot,
                    std::vector<int32_t>& pos) {
  std::vector<int32_t> all(slots);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  slot.assign(tokens, 0);
  pos.assign(tokens, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    slot[t] = (t % 5 == 3) ? -1 : all[t % slots];
    pos[t] = static_cast<int32_t>(rng() % max_pos);
  }
}

void test_kv_write() {
  if (!wanted("write_kv_cache")) return;
  struct Case { int64_t tokens, q_heads, kv_heads, head_dim, block_size, blocks; };
  std::vector<Case> cases = {{1, 8, 2, 128, 16, 4}, {7, 4, 4, 64, 16, 3}, {113, 32, 8, 128, 32, 8}, {37, 8, 1, 256, 16, 5}};
  if (small_mode) cases = {{7, 4, 4, 64, 16, 3}};
  const int64_t max_pos = 4096;
  for (int dtype : kDtypesAndF32) {
    for (int mode = 0; mode < 3; ++mode) {  // 0: plain write, 1: rotary neox, 2: rotary interleaved
      for (const Case& cs : cases) {
        const int64_t slots = cs.block_size * cs.blocks;
        const int64_t row = cs.kv_heads * cs.head_dim;
        const int64_t qs = cs.q_heads * cs.head_dim, ks = row + 8, vs = row + 16;
        auto q = randn(cs.tokens * qs, dtype), k = randn(cs.tokens * ks, dtype), v = randn(cs.tokens * vs, dtype);
        std::vector<int32_t> slot, pos;
        kv_write_slots(cs.tokens, slots, max_pos, slot, pos);
        auto cos_sin = make_cos_sin(max_pos, cs.head_dim);
        std::vector<float> rq = q, rk = k;
        if (mode > 0)
          kiln_cpu_rotary(rq.data(), qs, cs.q_heads, rk.data(), ks, cs.kv_heads, cs.head_dim, pos.data(), cs.tokens,
                          cos_sin.data(), max_pos, mode == 1);
        std::vector<float> ref_k(slots * row, NAN), ref_v(slots * row, NAN);
        kiln_cpu_write_kv_cache(rk.data(), ks, v.data(), vs, ref_k.data(), ref_v.data(), slot.data(), cs.tokens,
                                cs.kv_heads, cs.head_dim, slots);
        DeviceBuffer dq = upload(q, dtype), dk = upload(k, dtype), dv = upload(v, dtype);
        DeviceBuffer dkc(slots * row * element_bytes(dtype)), dvc(slots * row * element_bytes(dtype)), dslot = upload_raw(slot), dpos = upload_raw(pos),
            dcs = upload_raw(cos_sin);
        dkc.poison();
        dvc.poison();
        int st;
        if (mode == 0)
          st = kiln_cuda_write_kv_cache(dk.ptr, ks, dv.ptr, vs, dkc.ptr, dvc.ptr, dslot.as<int32_t>(), cs.tokens,
                                        cs.kv_heads, cs.head_dim, slots, dtype, nullptr);
        else
          st = kiln_cuda_rotary_write_kv_cache(dq.ptr, qs, cs.q_heads, dk.ptr, ks, dv.ptr, vs, dkc.ptr, dvc.ptr,
                                               dslot.as<int32_t>(), dpos.as<int32_t>(), dcs.as<float>(), max_pos,
                                               mode == 1, cs.tokens, cs.kv_heads, cs.head_dim, slots, dtype, nullptr);
        const char* op = mode == 0 ? "write_kv_cache" : (mode == 1 ? "rotary_write_kv_cache(neox)" : "rotary_write_kv_cache(gptj)");
        const std::string shape = shape_str({cs.tokens, cs.kv_heads, cs.head_dim}) + " bs" + std::to_string(cs.block_size);
        if (st != 0) { record_status(op, dtype, shape, st); continue; }
        sync_or_die(op);
        record(std::string(op) + ".k_cache", dtype, shape, compare(download(dkc, ref_k.size(), dtype), ref_k, rounded(ref_k, dtype), 1e-6));
        record(std::string(op) + ".v_cache", dtype, shape, compare(download(dvc, ref_v.size(), dtype), ref_v, rounded(ref_v, dtype), 1e-6));
        if (mode > 0)
          record(std::string(op) + ".q", dtype, shape, compare(download(dq, q.size(), dtype), rq, rounded(rq, dtype), 1e-6));
        // k itself is left unchanged.
        record(std::string(op) + ".k_unchanged", dtype, shape, compare(download(dk, k.size(), dtype), k, k, 0.0));
      }
    }
  }
}

// The writes into an FP8 cache against kiln_cpu_write_kv_cache_e4m3 (after kiln_cpu_rotary and the
// rounding to dtype that the fused write does): the plain write's codes and scales bit-equal; the
// rotary forms' codes within one step of the CPU's (the rotation's fp32 rounding may differ) and
// their values within an eighth of the row's largest magnitude of the CPU's, with the share of
// equal codes printed. Rows of zeros (scale 0), a NaN, and tiny values are among them.
void test_kv_write_e4m3() {
  if (!wanted("write_kv_cache_e4m3")) return;
  struct Case { int64_t tokens, q_heads, kv_heads, head_dim, blocks; };
  std::vector<Case> cases = {{1, 8, 2, 128, 4}, {7, 4, 4, 64, 3}, {113, 32, 8, 128, 8}, {37, 8, 1, 256, 5}, {9, 4, 2, 16, 2}};
  if (small_mode) cases = {{7, 4, 4, 64, 3}};
  const int64_t max_pos = 4096, block_size = 16;
  for (int dtype : kDtypes) {
    for (int mode = 0; mode < 3; ++mode) {  // 0: plain write, 1: rotary neox, 2: rotary interleaved
      for (const Case& cs : cases) {
        const int64_t slots = block_size * cs.blocks;
        const int64_t row = cs.kv_heads * cs.head_dim;
        const int64_t qs = cs.q_heads * cs.head_dim, ks = row + 8, vs = row + 16;
        auto q = randn(cs.tokens * qs, dtype), k = randn(cs.tokens * ks, dtype), v = randn(cs.tokens * vs, dtype);
        if (cs.tokens >= 3) {
          for (int64_t i = 0; i < cs.head_dim; ++i) k[i] = 0.0f;                           // token 0 head 0: zeros
          v[vs + 1] = NAN;                                                                // token 1 head 0: a NaN
          for (int64_t i = 0; i < cs.head_dim; ++i) v[2 * vs + i] = round_to(1e-37f * (1 + i % 3), dtype);  // tiny
        }
        std::vector<int32_t> slot, pos;
        kv_write_slots(cs.tokens, slots, max_pos, slot, pos);
        auto cos_sin = make_cos_sin(max_pos, cs.head_dim);
        std::vector<float> rq = q, rk = k;
        if (mode > 0) {
          kiln_cpu_rotary(rq.data(), qs, cs.q_heads, rk.data(), ks, cs.kv_heads, cs.head_dim, pos.data(), cs.tokens,
                          cos_sin.data(), max_pos, mode == 1);
          rk = rounded(rk, dtype);
        }
        std::vector<uint8_t> ref_kc(slots * row, 0x7f), ref_vc(slots * row, 0x7f);
        std::vector<float> ref_ks(slots * cs.kv_heads, NAN), ref_vs(slots * cs.kv_heads, NAN);
        kiln_cpu_write_kv_cache_e4m3(rk.data(), ks, v.data(), vs, ref_kc.data(), ref_vc.data(), ref_ks.data(),
                                     ref_vs.data(), slot.data(), cs.tokens, cs.kv_heads, cs.head_dim, slots);
        DeviceBuffer dq = upload(q, dtype), dk = upload(k, dtype), dv = upload(v, dtype);
        DeviceBuffer dkc = upload_raw(std::vector<uint8_t>(slots * row, 0x7f)), dvc = upload_raw(std::vector<uint8_t>(slots * row, 0x7f));
        DeviceBuffer dks(slots * cs.kv_heads * 4), dvs(slots * cs.kv_heads * 4);
        dks.poison();
        dvs.poison();
        DeviceBuffer dslot = upload_raw(slot), dpos = upload_raw(pos), dcs = upload_raw(cos_sin);
        int st;
        if (mode == 0)
          st = kiln_cuda_write_kv_cache_e4m3(dk.ptr, ks, dv.ptr, vs, dkc.as<uint8_t>(), dvc.as<uint8_t>(), dks.as<float>(),
                                             dvs.as<float>(), dslot.as<int32_t>(), cs.tokens, cs.kv_heads, cs.head_dim,
                                             slots, dtype, nullptr);
        else
          st = kiln_cuda_rotary_write_kv_cache_e4m3(dq.ptr, qs, cs.q_heads, dk.ptr, ks, dv.ptr, vs, dkc.as<uint8_t>(),
                                                    dvc.as<uint8_t>(), dks.as<float>(), dvs.as<float>(),
                                                    dslot.as<int32_t>(), dpos.as<int32_t>(), dcs.as<float>(), max_pos,
                                                    mode == 1, cs.tokens, cs.kv_heads, cs.head_dim, slots, dtype, nullptr);
        const std::string op = mode == 0 ? "write_kv_cache_e4m3"
                                         : (mode == 1 ? "rotary_write_kv_cache_e4m3(neox)" : "rotary_write_kv_cache_e4m3(gptj)");
        const std::string shape = shape_str({cs.tokens, cs.kv_heads, cs.head_dim});
        if (st != 0) { record_status(op, dtype, shape, st); continue; }
        sync_or_die(op.c_str());
        for (int pass = 0; pass < 2; ++pass) {
          const auto codes = download_raw<uint8_t>(pass == 0 ? dkc : dvc, slots * row);
          const auto scales = download_raw<float>(pass == 0 ? dks : dvs, slots * cs.kv_heads);
          const auto& ref_codes = pass == 0 ? ref_kc : ref_vc;
          const auto& ref_scales = pass == 0 ? ref_ks : ref_vs;
          const bool exact = mode == 0 || pass == 1;  // v is never rotated
          Comparison c;
          long long equal = 0;
          for (size_t i = 0; i < scales.size(); ++i) {
            const bool same = same_value(scales[i], ref_scales[i]);
            const bool close = std::fabs(scales[i] - ref_scales[i]) <= 0x1p-7f * std::fabs(ref_scales[i]);
            c.bad += (exact ? same : (same || close)) ? 0 : 1;
          }
          for (size_t i = 0; i < codes.size(); ++i) {
            // A NaN code's sign is not specified (kiln_cpu.h): 0x7f and 0xff are the same NaN.
            const bool both_nan = (codes[i] & 0x7f) == 0x7f && (ref_codes[i] & 0x7f) == 0x7f;
            equal += codes[i] == ref_codes[i] || both_nan;
            if (both_nan) continue;
            // Codes of one sign are ordered like their values: one step apart is one rounding.
            const int step = std::abs(static_cast<int>(codes[i] & 0x7f) - static_cast<int>(ref_codes[i] & 0x7f));
            const bool near = (codes[i] & 0x80) == (ref_codes[i] & 0x80) ? step <= 1 : (codes[i] & 0x7f) + (ref_codes[i] & 0x7f) <= 1;
            c.bad += (exact ? codes[i] == ref_codes[i] : near) ? 0 : 1;
          }
          c.pass = c.bad == 0;
          record(op + (pass == 0 ? ".k" : ".v"), dtype, shape, c,
                 (exact ? std::string("codes and scales bit-equal; ") : std::string("")) + std::to_string(equal) + "/" +
                     std::to_string(codes.size()) + " codes equal");
        }
        if (mode > 0)
          record(op + ".q", dtype, shape, compare(download(dq, q.size(), dtype), rq, rounded(rq, dtype), 1e-6));
      }
    }
  }
}

// ---- elementwise ----------------------------------------------------------------------------------

void test_silu_and_mul() {
  if (!wanted("silu_and_mul")) return;
  std::vector<std::pair<int64_t, int64_t>> cases = {{1, 64}, {7, 1000}, {113, 14336}, {5, 8191}};
  if (small_mode) cases = {{7, 1000}};
  for (int dtype : kDtypes) {
    for (auto [tokens, inter] : cases) {
      auto gu = randn(tokens * 2 * inter, dtype, 2.0f);
      std::vector<float> ref(tokens * inter);
      kiln_cpu_silu_and_mul(ref.data(), gu.data(), tokens, inter);
      DeviceBuffer dgu = upload(gu, dtype), dout(tokens * inter * 2);
      dout.poison();
      const int st = kiln_cuda_silu_and_mul(dout.ptr, dgu.ptr, tokens, inter, dtype, nullptr);
      const std::string shape = shape_str({tokens, inter});
      if (st != 0) { record_status("silu_and_mul", dtype, shape, st); continue; }
      sync_or_die("silu_and_mul");
      record("silu_and_mul", dtype, shape, compare(download(dout, ref.size(), dtype), ref, rounded(ref, dtype), 1e-6));
    }
  }
}

void test_embedding_gather_bias() {
  for (int dtype : kDtypes) {
    if (wanted("embedding")) {
      for (auto [tokens, hidden, vocab] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 64, 10}, {113, 4096, 1000}, {7, 1001, 50}}) {
        auto table = randn(vocab * hidden, dtype);
        std::vector<int32_t> ids(tokens);
        for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
        std::vector<float> ref(tokens * hidden);
        kiln_cpu_embedding(ref.data(), table.data(), KILN_F32, ids.data(), tokens, hidden, vocab);
        DeviceBuffer dt = upload(table, dtype), dids = upload_raw(ids), dout(tokens * hidden * 2);
        dout.poison();
        const int st = kiln_cuda_embedding(dout.ptr, dt.ptr, dids.as<int32_t>(), tokens, hidden, vocab, dtype, nullptr);
        const std::string shape = shape_str({tokens, hidden, vocab});
        if (st != 0) { record_status("embedding", dtype, shape, st); continue; }
        sync_or_die("embedding");
        record("embedding", dtype, shape, compare(download(dout, ref.size(), dtype), ref, ref, 0.0));
      }
    }
    if (wanted("gather_rows")) {
      for (auto [num_out, num_in, dim, pad] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{{1, 5, 64, 0}, {33, 113, 4096, 8}, {7, 9, 1001, 3}}) {
        const int64_t stride = dim + pad;
        auto in = randn(num_in * stride, dtype);
        std::vector<int32_t> idx(num_out);
        for (auto& i : idx) i = static_cast<int32_t>(rng() % num_in);
        std::vector<float> ref(num_out * dim);
        kiln_cpu_gather_rows(ref.data(), in.data(), stride, idx.data(), num_out, num_in, dim);
        DeviceBuffer din = upload(in, dtype), didx = upload_raw(idx), dout(num_out * dim * 2);
        dout.poison();
        const int st = kiln_cuda_gather_rows(dout.ptr, din.ptr, stride, didx.as<int32_t>(), num_out, num_in, dim, dtype, nullptr);
        const std::string shape = shape_str({num_out, num_in, dim}) + (pad ? " strided" : "");
        if (st != 0) { record_status("gather_rows", dtype, shape, st); continue; }
        sync_or_die("gather_rows");
        record("gather_rows", dtype, shape, compare(download(dout, ref.size(), dtype), ref, ref, 0.0));
      }
    }
    if (wanted("add_bias")) {
      // No CPU twin op: the reference is x + b in fp32 here.
      for (auto [nrows, dim, pad] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 64, 0}, {113, 4096, 8}, {7, 1001, 3}}) {
        const int64_t stride = dim + pad;
        auto x = randn(nrows * stride, dtype), b = randn(dim, dtype);
        std::vector<float> ref = x;
        for (int64_t r = 0; r < nrows; ++r)
          for (int64_t i = 0; i < dim; ++i) ref[r * stride + i] = x[r * stride + i] + b[i];
        DeviceBuffer dx = upload(x, dtype), db = upload(b, dtype);
        const int st = kiln_cuda_add_bias(dx.ptr, stride, db.ptr, nrows, dim, dtype, nullptr);
        const std::string shape = shape_str({nrows, dim}) + (pad ? " strided" : "");
        if (st != 0) { record_status("add_bias", dtype, shape, st); continue; }
        sync_or_die("add_bias");
        record("add_bias", dtype, shape, compare(download(dx, ref.size(), dtype), ref, rounded(ref, dtype), 1e-6));
      }
    }
  }
}

// ---- attention ------------------------------------------------------------------------------------

struct Seq { int32_t seq_len, query_len; };

// An FP8 copy of a paged cache: every used slot's rows quantised by the CPU twin
// (kiln_cpu_write_kv_cache_e4m3), unused slots NaN codes (0x7f) with NaN scales, and the values
// the codes stand for (code x scale) for the naive reference.
struct E4m3Cache {
  std::vector<uint8_t> k_codes, v_codes;  // [slots, kv_heads, head_dim]
  std::vector<float> k_scales, v_scales;  // [slots, kv_heads]
  std::vector<float> k_values, v_values;  // [slots, kv_heads, head_dim], NaN where unused
};

E4m3Cache quantize_cache(const std::vector<float>& kc, const std::vector<float>& vc, const std::vector<int32_t>& used_slots,
                         int64_t num_slots, int64_t kv_heads, int64_t head_dim) {
  const int64_t kv_row = kv_heads * head_dim;
  E4m3Cache c{std::vector<uint8_t>(kc.size(), 0x7f), std::vector<uint8_t>(kc.size(), 0x7f),
              std::vector<float>(num_slots * kv_heads, NAN), std::vector<float>(num_slots * kv_heads, NAN),
              std::vector<float>(kc.size(), NAN), std::vector<float>(kc.size(), NAN)};
  for (int32_t slot : used_slots) {
    if (kiln_cpu_write_kv_cache_e4m3(&kc[slot * kv_row], kv_row, &vc[slot * kv_row], kv_row, c.k_codes.data(),
                                     c.v_codes.data(), c.k_scales.data(), c.v_scales.data(), &slot, 1, kv_heads,
                                     head_dim, num_slots) != 0) {
      std::printf("cpu twin failed: %s\n", kiln_last_error());
      std::exit(2);
    }
    std::vector<float> values(kv_row);
    for (int pass = 0; pass < 2; ++pass) {
      const auto& codes = pass == 0 ? c.k_codes : c.v_codes;
      const auto& scales = pass == 0 ? c.k_scales : c.v_scales;
      auto& out = pass == 0 ? c.k_values : c.v_values;
      kiln_cpu_e4m3_to_f32(values.data(), &codes[slot * kv_row], kv_row);
      for (int64_t i = 0; i < kv_row; ++i) out[slot * kv_row + i] = values[i] * scales[slot * kv_heads + i / head_dim];
    }
  }
  return c;
}

// Prefill (decode == false) or decode attention on a packed batch against kiln_cpu_attention (or,
// fp8, over an e4m3 cache against kiln_cpu_attention_e4m3, the naive rule run on the values the
// codes stand for).
void run_attention_case(bool decode, int dtype, int64_t head_dim, int64_t block_size, int64_t q_heads, int64_t kv_heads,
                        const std::vector<Seq>& seqs, const std::string& tag, bool fp8 = false) {
  const int64_t num_seqs = static_cast<int64_t>(seqs.size());
  std::vector<int32_t> query_start(num_seqs + 1, 0), seq_lens(num_seqs);
  int64_t used_blocks = 0, max_blocks = 1, max_query = 0, max_seq = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    seq_lens[s] = seqs[s].seq_len;
    query_start[s + 1] = query_start[s] + seqs[s].query_len;
    const int64_t nb = (seqs[s].seq_len + block_size - 1) / block_size;
    used_blocks += nb;
    max_blocks = std::max(max_blocks, nb + 1);  // one spare table entry per sequence, never valid
    max_query = std::max<int64_t>(max_query, seqs[s].query_len);
    max_seq = std::max<int64_t>(max_seq, seqs[s].seq_len);
  }
  const int64_t num_tokens = query_start[num_seqs];
  const int64_t num_blocks = used_blocks + 3;  // spare blocks stay NaN
  std::vector<int32_t> perm(num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  // Unused table entries hold an id far outside the cache: reading through one would fault.
  std::vector<int32_t> tables(num_seqs * max_blocks, 0x3fffffff);
  int64_t next = 0;
  const int64_t kv_row = kv_heads * head_dim;
  std::vector<float> kc(num_blocks * block_size * kv_row, NAN), vc(kc.size(), NAN);
  std::vector<int32_t> used_slots;
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t nb = (seqs[s].seq_len + block_size - 1) / block_size;
    for (int64_t b = 0; b < nb; ++b) tables[s * max_blocks + b] = perm[next++];
    for (int64_t p = 0; p < seqs[s].seq_len; ++p) {
      const int64_t slot = static_cast<int64_t>(tables[s * max_blocks + p / block_size]) * block_size + p % block_size;
      used_slots.push_back(static_cast<int32_t>(slot));
      for (int64_t i = 0; i < kv_row; ++i) {
        kc[slot * kv_row + i] = round_to(dist(rng), dtype);
        vc[slot * kv_row + i] = round_to(dist(rng), dtype);
      }
    }
  }
  const int64_t row = q_heads * head_dim;
  const int64_t q_stride = row + (tag.find("strided") != std::string::npos ? 64 : 0);
  auto q = randn(num_tokens * q_stride, dtype);
  std::vector<float> q_packed(num_tokens * row);
  for (int64_t t = 0; t < num_tokens; ++t) std::copy_n(&q[t * q_stride], row, &q_packed[t * row]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  std::vector<float> ref(num_tokens * row), naive(num_tokens * row);
  E4m3Cache e4m3;
  if (fp8) e4m3 = quantize_cache(kc, vc, used_slots, num_blocks * block_size, kv_heads, head_dim);
  const int cpu_status =
      fp8 ? kiln_cpu_attention_e4m3(ref.data(), row, q_packed.data(), row, e4m3.k_codes.data(), e4m3.v_codes.data(),
                                    e4m3.k_scales.data(), e4m3.v_scales.data(), tables.data(), max_blocks,
                                    query_start.data(), seq_lens.data(), num_seqs, num_tokens, q_heads, kv_heads,
                                    head_dim, block_size, num_blocks, scale)
          : kiln_cpu_attention(ref.data(), row, q_packed.data(), row, kc.data(), vc.data(), tables.data(), max_blocks,
                               query_start.data(), seq_lens.data(), num_seqs, num_tokens, q_heads, kv_heads, head_dim,
                               block_size, num_blocks, scale);
  if (cpu_status != 0) {
    std::printf("cpu twin failed: %s\n", kiln_last_error());
    std::exit(2);
  }
  naive_attention_lowp(naive.data(), q_packed.data(), fp8 ? e4m3.k_values.data() : kc.data(),
                       fp8 ? e4m3.v_values.data() : vc.data(), tables.data(), max_blocks, query_start.data(),
                       seq_lens.data(), num_seqs, num_tokens, q_heads, kv_heads, head_dim, block_size, scale, dtype);

  DeviceBuffer dq = upload(q, dtype);
  DeviceBuffer dkc = fp8 ? upload_raw(e4m3.k_codes) : upload(kc, dtype), dvc = fp8 ? upload_raw(e4m3.v_codes) : upload(vc, dtype);
  DeviceBuffer dks = upload_raw(fp8 ? e4m3.k_scales : std::vector<float>()), dvs = upload_raw(fp8 ? e4m3.v_scales : std::vector<float>());
  DeviceBuffer dtab = upload_raw(tables), dqs = upload_raw(query_start), dlens = upload_raw(seq_lens);
  const int64_t out_stride = q_stride;
  DeviceBuffer dout(num_tokens * out_stride * element_bytes(dtype));
  dout.poison();
  int st;
  std::string note;
  if (decode) {
    const int64_t ws = kiln_cuda_attention_decode_workspace_size(num_seqs, q_heads, kv_heads, head_dim, max_seq);
    DeviceBuffer dws(ws);
    CUDA_OK(cudaMemset(dws.ptr, 0, ws > 0 ? ws : 1));
    // Twice: the second call checks that the first left the split counters at zero.
    for (int call = 0; call < 2; ++call) {
      dout.poison();
      st = fp8 ? kiln_cuda_attention_decode_e4m3(dout.ptr, out_stride, dq.ptr, q_stride, dkc.as<uint8_t>(),
                                                 dvc.as<uint8_t>(), dks.as<float>(), dvs.as<float>(), dtab.as<int32_t>(),
                                                 max_blocks, dlens.as<int32_t>(), num_seqs, max_seq, q_heads, kv_heads,
                                                 head_dim, block_size, num_blocks, scale, dws.ptr, ws, dtype, nullptr)
               : kiln_cuda_attention_decode(dout.ptr, out_stride, dq.ptr, q_stride, dkc.ptr, dvc.ptr, dtab.as<int32_t>(),
                                            max_blocks, dlens.as<int32_t>(), num_seqs, max_seq, q_heads, kv_heads,
                                            head_dim, block_size, num_blocks, scale, dws.ptr, ws, dtype, nullptr);
      if (st != 0) break;
      sync_or_die("attention_decode");
    }
    note = "ws " + std::to_string(ws) + "B";
  } else {
    st = fp8 ? kiln_cuda_attention_prefill_e4m3(dout.ptr, out_stride, dq.ptr, q_stride, dkc.as<uint8_t>(),
                                                dvc.as<uint8_t>(), dks.as<float>(), dvs.as<float>(), dtab.as<int32_t>(),
                                                max_blocks, dqs.as<int32_t>(), dlens.as<int32_t>(), num_seqs, num_tokens,
                                                max_query, q_heads, kv_heads, head_dim, block_size, num_blocks, scale,
                                                dtype, nullptr)
             : kiln_cuda_attention_prefill(dout.ptr, out_stride, dq.ptr, q_stride, dkc.ptr, dvc.ptr, dtab.as<int32_t>(),
                                           max_blocks, dqs.as<int32_t>(), dlens.as<int32_t>(), num_seqs, num_tokens,
                                           max_query, q_heads, kv_heads, head_dim, block_size, num_blocks, scale, dtype,
                                           nullptr);
    if (st == 0) sync_or_die("attention_prefill");
  }
  const std::string op = std::string(decode ? "attention_decode" : "attention_prefill") + (fp8 ? "_e4m3" : "");
  std::string shape = "D" + std::to_string(head_dim) + " bs" + std::to_string(block_size) + " h" + std::to_string(q_heads) +
                      "/" + std::to_string(kv_heads) + " " + tag;
  if (st != 0) { record_status(op, dtype, shape, st); return; }
  auto got_full = download(dout, num_tokens * out_stride, dtype);
  std::vector<float> got(num_tokens * row);
  for (int64_t t = 0; t < num_tokens; ++t) std::copy_n(&got_full[t * out_stride], row, &got[t * row]);
  record(op, dtype, shape, compare(got, ref, naive, 1e-4), note);
}

// Attention over an FP8 cache (the tensor-core head sizes; the other sizes are refused).
void test_attention_e4m3() {
  const bool do_prefill = wanted("attention_prefill_e4m3"), do_decode = wanted("attention_decode_e4m3");
  if (!do_prefill && !do_decode) return;
  if (small_mode) {
    for (int dtype : kDtypes) {
      for (int64_t d : {64, 128}) {
        if (do_prefill)
          run_attention_case(false, dtype, d, 16, 8, 2, {{1, 1}, {7, 7}, {150, 113}, {40, 33}}, "small", true);
        if (do_decode) run_attention_case(true, dtype, d, 16, 8, 2, {{1, 1}, {7, 1}, {113, 1}, {700, 1}}, "small", true);
      }
    }
    return;
  }
  const std::vector<std::pair<int64_t, int64_t>> heads = {{8, 2}, {16, 2}, {8, 1}};
  for (int dtype : kDtypes) {
    for (int64_t d : {64, 128, 256}) {
      for (int64_t bs : {16, 32}) {
        for (auto [qh, kvh] : heads) {
          if (do_prefill)
            run_attention_case(false, dtype, d, bs, qh, kvh,
                               {{1, 1}, {7, 7}, {113, 113}, {200, 87}, {1023, 1023}, {1500, 300}, {64, 1}},
                               std::string("lens 1,7,113,1023 + chunked") + (qh == 8 && kvh == 2 ? " strided" : ""), true);
          if (do_decode)
            run_attention_case(true, dtype, d, bs, qh, kvh,
                               {{1, 1}, {7, 1}, {113, 1}, {1023, 1}, {4097, 1}, {2000, 1}, {16, 1}, {33, 1}},
                               "lens 1,7,113,1023,4097,2000,16,33", true);
        }
      }
    }
    if (do_prefill) run_attention_case(false, dtype, 128, 32, 32, 1, {{4097, 1000}, {513, 513}}, "MQA32 chunked 4097/1000", true);
    if (do_decode) {
      run_attention_case(true, dtype, 128, 16, 32, 8, {{32768, 1}}, "B=1 32k split-K", true);
      std::vector<Seq> many;
      for (int i = 0; i < 64; ++i) many.push_back({static_cast<int32_t>(1 + rng() % 600), 1});
      run_attention_case(true, dtype, 128, 16, 32, 8, many, "B=64 random lens <= 600", true);
    }
  }
}

void test_attention() {
  const bool do_prefill = wanted("attention_prefill"), do_decode = wanted("attention_decode");
  if (!do_prefill && !do_decode) return;
  const std::vector<std::pair<int64_t, int64_t>> heads = {{4, 4}, {8, 2}, {16, 2}, {8, 1}};
  const char* env = std::getenv("KILN_CUDA_PREFILL");
  const std::string path = env ? std::string(" path=") + env : "";
  if (small_mode) {
    for (int dtype : kDtypes) {
      for (int64_t d : {64, 128}) {
        if (do_prefill)
          run_attention_case(false, dtype, d, 16, 8, 2, {{1, 1}, {7, 7}, {150, 113}, {40, 33}}, "small" + path);
        if (do_decode) run_attention_case(true, dtype, d, 16, 8, 2, {{1, 1}, {7, 1}, {113, 1}, {700, 1}}, "small");
      }
      if (do_prefill) run_attention_case(false, dtype, 32, 16, 8, 2, {{7, 7}, {150, 113}}, "small fallback");
      if (do_decode) run_attention_case(true, dtype, 32, 16, 8, 2, {{7, 1}, {700, 1}}, "small fallback");
    }
    return;
  }
  for (int64_t d : {16, 64, 128}) {  // fp32 data: the fallback at every head size
    if (do_prefill)
      run_attention_case(false, KILN_CUDA_F32, d, 16, 8, 2, {{1, 1}, {7, 7}, {113, 113}, {700, 300}, {64, 1}},
                         "fp32 lens 1,7,113,700 + chunked");
    if (do_decode)
      run_attention_case(true, KILN_CUDA_F32, d, 32, 8, 2, {{1, 1}, {7, 1}, {1100, 1}, {33, 1}}, "fp32 lens 1,7,1100,33");
  }
  for (int dtype : kDtypes) {
    for (int64_t d : {64, 128, 256}) {
      for (int64_t bs : {16, 32}) {
        for (auto [qh, kvh] : heads) {
          if (do_prefill) {
            const bool strided = (qh == 8 && kvh == 2);
            run_attention_case(false, dtype, d, bs, qh, kvh,
                               {{1, 1}, {7, 7}, {113, 113}, {200, 87}, {1023, 1023}, {1500, 300}, {64, 1}},
                               std::string("lens 1,7,113,1023 + chunked") + (strided ? " strided" : "") + path);
          }
          if (do_decode)
            run_attention_case(true, dtype, d, bs, qh, kvh,
                               {{1, 1}, {7, 1}, {113, 1}, {1023, 1}, {4097, 1}, {2000, 1}, {16, 1}, {33, 1}},
                               "lens 1,7,113,1023,4097,2000,16,33");
        }
      }
    }
    if (do_prefill) {
      run_attention_case(false, dtype, 128, 16, 8, 2, {{4097, 4097}}, "len 4097" + path);
      run_attention_case(false, dtype, 128, 32, 32, 1, {{4097, 1000}, {513, 513}}, "MQA32 chunked 4097/1000" + path);
    }
    // Head sizes without a tensor-core variant, and fp32 data, take the fp32 fallback.
    for (int64_t d : {16, 32, 80, 96}) {
      if (do_prefill)
        run_attention_case(false, dtype, d, 16, 8, 2, {{1, 1}, {7, 7}, {113, 113}, {700, 300}, {64, 1}},
                           "fallback lens 1,7,113,700 + chunked" + path);
      if (do_decode)
        run_attention_case(true, dtype, d, 32, 4, 1, {{1, 1}, {7, 1}, {1100, 1}, {33, 1}}, "fallback lens 1,7,1100,33");
    }
    if (do_decode) {
      run_attention_case(true, dtype, 128, 16, 32, 1, {{5000, 1}, {1, 1}, {77, 1}}, "MQA32");
      run_attention_case(true, dtype, 128, 16, 32, 8, {{32768, 1}}, "B=1 32k split-K");
      std::vector<Seq> many;
      for (int i = 0; i < 64; ++i) many.push_back({static_cast<int32_t>(1 + rng() % 600), 1});
      run_attention_case(true, dtype, 128, 16, 32, 8, many, "B=64 random lens <= 600");
    }
  }
}

// ---- sampling -----------------------------------------------------------------------------------

void test_argmax() {
  if (!wanted("argmax")) return;
  for (int dtype : {KILN_CUDA_F32, KILN_CUDA_BF16, KILN_CUDA_F16}) {
    for (auto [batch, vocab] : std::vector<std::pair<int64_t, int64_t>>{{1, 10}, {7, 32000}, {3, 151936}, {1, 128256}}) {
      auto logits = randn(batch * vocab, dtype, 3.0f);
      std::vector<int32_t> ref_ids(batch);
      std::vector<float> ref_lp(batch);
      kiln_cpu_argmax(logits.data(), batch, vocab, ref_ids.data(), ref_lp.data());
      DeviceBuffer dl = upload(logits, dtype), dids(batch * 4), dlp(batch * 4);
      // Called twice: the second call checks that the first left the workspace's counters at zero.
      const int64_t ws_bytes = kiln_cuda_argmax_workspace_size(batch, vocab);
      DeviceBuffer ws(ws_bytes);
      CUDA_OK(cudaMemset(ws.ptr, 0, ws_bytes));
      for (int variant = 0; variant < 2; ++variant) {
        dids.poison();
        dlp.poison();
        const int st = kiln_cuda_argmax(dl.ptr, vocab, dtype, batch, vocab, dids.as<int32_t>(), dlp.as<float>(), ws.ptr,
                                        ws_bytes, nullptr);
        const std::string shape = shape_str({batch, vocab}) + (variant == 0 ? " chunks" : " again");
        if (st != 0) { record_status("argmax", dtype, shape, st); continue; }
        sync_or_die("argmax");
        auto ids = download_raw<int32_t>(dids, batch);
        auto lp = download_raw<float>(dlp, batch);
        Comparison c = compare(lp, ref_lp, {}, 2e-5);
        for (int64_t b = 0; b < batch; ++b) c.bad += ids[b] != ref_ids[b];
        c.pass = c.pass && c.bad == 0;
        record("argmax", dtype, shape, c, "ids must match exactly; bad = mismatched ids");
      }
    }
  }
}

// ---- skinny matrix products ---------------------------------------------------------------------

void test_gemv() {
  if (!wanted("gemv")) return;
  struct Case { int64_t m, n, k; bool gated, bias, f32_out; };
  std::vector<Case> cases = {{1, 3072, 2048, false, false, false}, {4, 8192, 2048, true, false, false},
                             {2, 517, 904, false, true, false},    {3, 1000, 24, false, false, true},
                             {1, 128256, 2048, false, false, true}, {4, 14336, 4096, true, false, false},
                             {1, 7, 8, true, false, false},         {3, 300, 256, true, false, false}};
  if (small_mode) cases = {{2, 517, 904, false, true, false}, {3, 300, 256, true, false, false}};
  for (int dtype : kDtypes) {
    for (const Case& cs : cases) {
      const int64_t x_stride = cs.k + 8;  // a padded row, as a slice of a wider buffer
      const int64_t w_rows = cs.gated ? 2 * cs.n : cs.n;
      auto x = randn(cs.m * x_stride, dtype, 1.0f);
      auto w = randn(w_rows * cs.k, dtype, 0.05f);
      auto bias = randn(cs.n, dtype, 0.5f);
      std::vector<float> x_packed(cs.m * cs.k);
      for (int64_t r = 0; r < cs.m; ++r) std::copy_n(&x[r * x_stride], cs.k, &x_packed[r * cs.k]);
      std::vector<uint16_t> w_bits(w.size()), b_bits(bias.size());
      for (size_t i = 0; i < w.size(); ++i) w_bits[i] = to_half_bits(w[i], dtype);
      for (size_t i = 0; i < bias.size(); ++i) b_bits[i] = to_half_bits(bias[i], dtype);
      // The reference: the product in fp32; gated, gate_up rounded to dtype, then SiLU-and-mul.
      std::vector<float> product(cs.m * w_rows), ref(cs.m * cs.n);
      kiln_cpu_gemm(product.data(), w_rows, x_packed.data(), cs.k, w_bits.data(), dtype,
                    cs.bias ? b_bits.data() : nullptr, dtype, cs.m, w_rows, cs.k);
      if (cs.gated) kiln_cpu_silu_and_mul(ref.data(), rounded(product, dtype).data(), cs.m, cs.n);
      else ref = product;
      const int out_dtype = cs.f32_out ? KILN_CUDA_F32 : dtype;
      DeviceBuffer dx = upload(x, dtype), dw = upload(w, dtype), db = upload(bias, dtype);
      DeviceBuffer dout(cs.m * cs.n * (cs.f32_out ? 4 : 2));
      dout.poison();
      const int st = kiln_cuda_gemv(dout.ptr, cs.n, out_dtype, dx.ptr, x_stride, cs.gated ? 1 : 0, dw.ptr,
                                    cs.bias ? db.ptr : nullptr, cs.m, cs.n, cs.k, dtype, nullptr);
      const std::string shape = shape_str({cs.m, cs.n, cs.k}) + (cs.gated ? " gated" : "") + (cs.bias ? " bias" : "") +
                                (cs.f32_out ? " f32out" : "");
      if (st != 0) { record_status("gemv", dtype, shape, st); continue; }
      sync_or_die("gemv");
      // NOTE: the naive answer is the reference rounded once to the output type; gated, the gate
      // or up value may also round to the other side of a tie, hence the relative slack.
      record("gemv", dtype, shape,
             compare(download(dout, ref.size(), out_dtype), ref, rounded(ref, out_dtype), cs.gated ? 1e-2 : 1e-4));
    }
  }
  // Refusals: too many rows, k not a multiple of 8, misaligned x.
  DeviceBuffer buf(1 << 20);
  const bool refused = kiln_cuda_gemv(buf.ptr, 8, KILN_CUDA_BF16, buf.ptr, 16, 0, buf.ptr, nullptr, 5, 8, 16,
                                      KILN_CUDA_BF16, nullptr) == KILN_CUDA_ERR_UNSUPPORTED &&
                       kiln_cuda_gemv(buf.ptr, 8, KILN_CUDA_BF16, buf.ptr, 16, 0, buf.ptr, nullptr, 1, 8, 12,
                                      KILN_CUDA_BF16, nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT &&
                       kiln_cuda_gemv(buf.ptr, 8, KILN_CUDA_BF16, static_cast<char*>(buf.ptr) + 2, 16, 0, buf.ptr,
                                      nullptr, 1, 8, 16, KILN_CUDA_BF16, nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT;
  Comparison c;
  c.pass = refused;
  record("gemv", KILN_CUDA_BF16, "refusals", c, "5 rows, k=12 and a misaligned x must be refused");
}

// ---- FP8 ---------------------------------------------------------------------------------------

// Bit-equal floats (NaN equal to NaN): the FP8 quantiser must match the CPU twin exactly.

// The activation / weight quantiser against kiln_cpu_quantize_e4m3_inputs: codes and scales equal,
// on rows that hold zeros only, a NaN, an infinity, values past 448 * scale (static) and ties.
void test_quantize_e4m3() {
  struct Case { int64_t m, k; int mode; float static_scale, ub; };
  std::vector<Case> cases = {{7, 4096, KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 0},
                             {300, 136, KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 0},
                             {5, 14336, KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 1.5f},
                             {9, 520, KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR, 0.004f, 0}};
  if (small_mode) cases = {{7, 136, KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 0},
                           {9, 520, KILN_CUDA_FP8_INPUT_STATIC_PER_TENSOR, 0.004f, 0}};
  for (int dtype : kDtypesAndF32) {
    for (const Case& cs : cases) {
      const int64_t x_stride = cs.k + 8;
      auto x = randn(cs.m * x_stride, dtype, 2.0f);
      if (cs.m >= 4) {
        for (int64_t c = 0; c < cs.k; ++c) x[c] = 0.0f;       // row 0: zeros (scale 0)
        x[x_stride + 3] = NAN;                                // row 1: a NaN
        x[2 * x_stride + 5] = -INFINITY;                      // row 2: an infinity
        for (int64_t c = 0; c < cs.k; ++c) x[3 * x_stride + c] = round_to(0.25f * (c % 64) - 8.0f, dtype);  // ties
      }
      if (cs.m >= 5) {
        // row 4: tiny values and zeros (amax / 448 below 2^-126: the scale is raised to 2^-126)
        for (int64_t c = 0; c < cs.k; ++c) x[4 * x_stride + c] = c % 2 ? 0.0f : round_to(1e-37f * (1 + c % 7), dtype);
      }
      const int cpu_mode = cs.mode == KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN ? KILN_FP8_INPUT_DYNAMIC_PER_TOKEN
                                                                           : KILN_FP8_INPUT_STATIC_PER_TENSOR;
      std::vector<float> ref_values(cs.m * cs.k), ref_scales(cs.m);
      kiln_cpu_quantize_e4m3_inputs(ref_values.data(), ref_scales.data(), x.data(), x_stride, cpu_mode,
                                    cs.static_scale, cs.ub, cs.m, cs.k);
      DeviceBuffer dx = upload(x, dtype), dq(cs.m * cs.k), ds(cs.m * 4);
      dq.poison();
      ds.poison();
      const std::string shape = shape_str({cs.m, cs.k}) +
                                (cs.mode == KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN ? " dynamic" : " static") +
                                (cs.ub > 0 ? " ub" : "");
      const int st = kiln_cuda_quantize_e4m3(dq.as<uint8_t>(), ds.as<float>(), dx.ptr, x_stride, dtype, cs.mode,
                                             cs.static_scale, cs.ub, cs.m, cs.k, nullptr);
      if (st != 0) { record_status("quantize_e4m3", dtype, shape, st); continue; }
      sync_or_die("quantize_e4m3");
      auto codes = download_raw<uint8_t>(dq, cs.m * cs.k);
      auto scales = download_raw<float>(ds, cs.m);
      std::vector<float> values(codes.size());
      kiln_cpu_e4m3_to_f32(values.data(), codes.data(), static_cast<int64_t>(codes.size()));
      Comparison c;
      for (size_t i = 0; i < values.size(); ++i) c.bad += same_value(values[i], ref_values[i]) ? 0 : 1;
      for (int64_t i = 0; i < cs.m; ++i) c.bad += same_value(scales[i], ref_scales[i]) ? 0 : 1;
      c.pass = c.bad == 0;
      record("quantize_e4m3", dtype, shape, c, "codes and scales bit-equal to the CPU twin");
    }
  }
}

// The FP8 dequantiser: e4m3 value * row scale, rounded once to dtype; every one of the 256 codes.
void test_dequantize_e4m3() {
  const int64_t rows = 3, cols = 256;
  std::vector<uint8_t> codes(rows * cols);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i);
  const std::vector<float> scales = {1.0f, 0.0137f, 3.5f};
  std::vector<float> decoded(codes.size());
  kiln_cpu_e4m3_to_f32(decoded.data(), codes.data(), static_cast<int64_t>(codes.size()));
  for (int dtype : kDtypesAndF32) {
    std::vector<float> ref(codes.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = round_to(decoded[i] * scales[i / cols], dtype);
    DeviceBuffer dw = upload_raw(codes), ds = upload_raw(scales), dout(codes.size() * element_bytes(dtype));
    dout.poison();
    const int st = kiln_cuda_dequantize_e4m3(dout.ptr, dw.as<uint8_t>(), ds.as<float>(), rows, cols, dtype, nullptr);
    if (st != 0) { record_status("dequantize_e4m3", dtype, "3x256", st); continue; }
    sync_or_die("dequantize_e4m3");
    auto got = download(dout, ref.size(), dtype);
    Comparison c;
    for (size_t i = 0; i < got.size(); ++i) c.bad += same_value(got[i], ref[i]) ? 0 : 1;
    c.pass = c.bad == 0;
    record("dequantize_e4m3", dtype, "3x256 every code", c, "bit-equal to value * scale rounded once");
  }
}

// One case of an FP8 product (skinny or narrow): m token rows, n outputs (gated: n gate and n up
// weight rows), k inputs; with a bias, or fp32 output.
struct F8ProductCase {
  int64_t m, n, k;
  bool gated, bias, f32_out;
};

// A case's inputs: e4m3 weights quantised by the CPU, the CPU twin's answer over the same inputs,
// and the device copies with the inputs quantised on the device (quantize_status: its status).
struct F8ProductInputs {
  int64_t w_rows;
  std::vector<uint8_t> w;
  std::vector<float> w_scales, ref;
  DeviceBuffer dq, dxs, dw, dws, db;
  int quantize_status;
};

F8ProductInputs prepare_f8_product(const F8ProductCase& cs, int dtype) {
  const int64_t w_rows = cs.gated ? 2 * cs.n : cs.n;
  auto x = randn(cs.m * cs.k, dtype, 1.0f);
  auto w_float = randn(w_rows * cs.k, KILN_CUDA_F32, 0.05f);
  std::vector<uint8_t> w(w_float.size());
  std::vector<float> w_scales(w_rows);
  kiln_cpu_quantize_f8_rows(w.data(), w_scales.data(), w_float.data(), KILN_F32, w_rows, cs.k);
  auto bias = randn(cs.n, dtype, 0.5f);
  std::vector<uint16_t> b_bits(bias.size());
  for (size_t i = 0; i < bias.size(); ++i) b_bits[i] = to_half_bits(bias[i], dtype);
  std::vector<float> product(cs.m * w_rows), ref(cs.m * cs.n);
  const void* ref_bias = !cs.bias ? nullptr : dtype == KILN_CUDA_F32 ? static_cast<const void*>(bias.data())
                                                                     : static_cast<const void*>(b_bits.data());
  kiln_cpu_gemm_f8(product.data(), w_rows, x.data(), cs.k, w.data(), w_scales.data(),
                   KILN_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 0, ref_bias, dtype, cs.m, w_rows, cs.k);
  if (cs.gated) kiln_cpu_silu_and_mul(ref.data(), rounded(product, dtype).data(), cs.m, cs.n);
  else ref = product;
  DeviceBuffer dx = upload(x, dtype), dq(cs.m * cs.k), dxs(cs.m * 4);
  const int st = kiln_cuda_quantize_e4m3(dq.as<uint8_t>(), dxs.as<float>(), dx.ptr, cs.k, dtype,
                                         KILN_CUDA_FP8_INPUT_DYNAMIC_PER_TOKEN, 0, 0, cs.m, cs.k, nullptr);
  DeviceBuffer dw = upload_raw(w), dws = upload_raw(w_scales), db = upload(bias, dtype);
  return F8ProductInputs{w_rows, std::move(w), std::move(w_scales), std::move(ref), std::move(dq), std::move(dxs),
                         std::move(dw), std::move(dws), std::move(db), st};
}

// The skinny FP8 product against kiln_cpu_gemm_f8 over the same inputs (quantised by the CUDA
// quantiser, which the case above holds equal to the CPU's): the fp32 sums differ only in order.
void test_gemv_f8() {
  std::vector<F8ProductCase> cases = {{1, 6144, 4096, false, false, false}, {8, 4096, 14336, false, false, false},
                             {4, 14336, 4096, true, false, false},  {3, 1000, 192, false, true, false},
                             {2, 517, 64, false, false, true},      {5, 40, 128, true, false, false},
                             {7, 4096, 4096, false, true, false},   {6, 24, 640, false, false, false},
                             {16, 4096, 4096, false, false, false}, {13, 3000, 256, true, false, false},
                             {11, 517, 320, false, true, false},    {16, 14336, 4096, true, false, false},
                             {16, 4096, 14336, false, false, true}, {9, 64, 64, false, false, false}};
  if (small_mode) cases = {{3, 40, 192, false, true, false}, {5, 24, 128, true, false, false},
                           {11, 40, 192, false, true, false}, {16, 24, 128, true, false, false}};
  for (int dtype : kDtypesAndF32) {
    for (const F8ProductCase& cs : cases) {
      F8ProductInputs in = prepare_f8_product(cs, dtype);
      const std::vector<float>& ref = in.ref;
      const int out_dtype = cs.f32_out ? KILN_CUDA_F32 : dtype;
      DeviceBuffer dout(cs.m * cs.n * element_bytes(out_dtype));
      dout.poison();
      const std::string shape = shape_str({cs.m, cs.n, cs.k}) + (cs.gated ? " gated" : "") + (cs.bias ? " bias" : "") +
                                (cs.f32_out ? " f32out" : "");
      int st = in.quantize_status;
      if (st == 0)
        st = kiln_cuda_gemv_f8(dout.ptr, cs.n, out_dtype, in.dq.as<uint8_t>(), in.dxs.as<float>(), cs.gated ? 1 : 0,
                               in.dw.as<uint8_t>(), in.dws.as<float>(), cs.bias ? in.db.ptr : nullptr, cs.m, cs.n,
                               cs.k, dtype, nullptr);
      if (st != 0) { record_status("gemv_f8", dtype, shape, st); continue; }
      sync_or_die("gemv_f8");
      // NOTE: the naive answer is the reference rounded once to the output type (the sums of exact
      // products differ only in order); gated, gate or up may round to the other side of a tie.
      record("gemv_f8", dtype, shape,
             compare(download(dout, ref.size(), out_dtype), ref, rounded(ref, out_dtype), cs.gated ? 1e-2 : 1e-4));
    }
  }
  DeviceBuffer buf(1 << 20);
  const bool refused =
      kiln_cuda_gemv_f8(buf.ptr, 8, KILN_CUDA_BF16, buf.as<uint8_t>(), buf.as<float>(), 0, buf.as<uint8_t>(),
                        buf.as<float>(), nullptr, 17, 8, 64, KILN_CUDA_BF16, nullptr) == KILN_CUDA_ERR_UNSUPPORTED &&
      kiln_cuda_gemv_f8(buf.ptr, 8, KILN_CUDA_BF16, buf.as<uint8_t>(), buf.as<float>(), 0, buf.as<uint8_t>(),
                        buf.as<float>(), nullptr, 1, 8, 96, KILN_CUDA_BF16, nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT &&
      kiln_cuda_gemv_f8(buf.ptr, 8, KILN_CUDA_BF16, buf.as<uint8_t>() + 4, buf.as<float>(), 0, buf.as<uint8_t>(),
                        buf.as<float>(), nullptr, 1, 8, 64, KILN_CUDA_BF16, nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT;
  Comparison c;
  c.pass = refused;
  record("gemv_f8", KILN_CUDA_BF16, "refusals", c, "17 rows, k=96 and a misaligned xq must be refused");
}

// Hopper's FP8 wgmma keeps fewer bits than fp32 while it adds up products (about 14, DeepSeek-V3's
// report; cuBLASLt's FP8 GEMM shows the same): the allowance is 2^-11 of the terms' magnitudes,
// bounded here by Cauchy-Schwarz, |x_r| |w_c| of the dequantised rows (the 2^-11 CudaFp8Test
// allows over the exact sum of |x_i w_i|).
std::vector<double> accumulation_allowance(const std::vector<uint8_t>& xq, const std::vector<float>& x_scales,
                                           const std::vector<uint8_t>& w, const std::vector<float>& w_scales,
                                           int64_t m, int64_t w_rows, int64_t k) {
  auto norms = [k](const std::vector<uint8_t>& codes, const std::vector<float>& scales, int64_t rows) {
    std::vector<float> values(k);
    std::vector<double> out(rows);
    for (int64_t r = 0; r < rows; ++r) {
      kiln_cpu_e4m3_to_f32(values.data(), codes.data() + r * k, k);
      double sum = 0;
      for (float v : values) sum += static_cast<double>(v) * v;
      out[r] = std::sqrt(sum) * scales[r];
    }
    return out;
  };
  const std::vector<double> xn = norms(xq, x_scales, m), wn = norms(w, w_scales, w_rows);
  std::vector<double> allowance(m * w_rows);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < w_rows; ++c) allowance[r * w_rows + c] = 0x1p-11 * xn[r] * wn[c];
  return allowance;
}

// The narrow FP8 product (Hopper) against kiln_cpu_gemm_f8 over the same quantised inputs: each
// element within twice its rounding to the output type plus the accumulation allowance (gated,
// propagated through SiLU-and-mul). Every shape runs twice on one workspace, the second answer
// bit-equal to the first (the split counters reset, the partial sums added in one order).
void test_gemm_f8_narrow() {
  if (!kiln_cuda_supports_gemm_f8_narrow()) {
    std::printf("SKIP   gemm_f8_narrow: not a Hopper GPU\n");
    return;
  }
  std::vector<F8ProductCase> cases = {{17, 6144, 4096, false, false, false}, {64, 4096, 14336, false, false, false},
                             {48, 14336, 4096, true, false, false},  {100, 1000, 256, false, true, false},
                             {33, 517, 128, false, false, true},     {128, 40, 384, true, false, false},
                             {128, 4096, 4096, false, true, false},  {65, 24, 640, false, false, false},
                             {32, 4096, 4096, false, false, false},  {77, 3000, 512, true, false, false},
                             {128, 14336, 4096, true, false, false}, {96, 4096, 14336, false, false, true},
                             {20, 64, 1024, false, false, false}};
  if (small_mode) cases = {{17, 40, 256, false, true, false}, {64, 24, 128, true, false, false},
                           {128, 300, 1024, false, false, false}, {40, 24, 512, true, false, false}};
  for (int dtype : kDtypesAndF32) {
    for (const F8ProductCase& cs : cases) {
      F8ProductInputs in = prepare_f8_product(cs, dtype);
      const int64_t w_rows = in.w_rows;
      const std::vector<float>& ref = in.ref;
      const int out_dtype = cs.f32_out ? KILN_CUDA_F32 : dtype;
      const int64_t ws_bytes = kiln_cuda_gemm_f8_narrow_workspace_size(cs.m, cs.n, cs.k, cs.gated ? 1 : 0);
      DeviceBuffer dwork(ws_bytes > 0 ? ws_bytes : 256);
      CUDA_OK(cudaMemset(dwork.ptr, 0, ws_bytes > 0 ? ws_bytes : 256));
      DeviceBuffer dout(cs.m * cs.n * element_bytes(out_dtype)), dout2(cs.m * cs.n * element_bytes(out_dtype));
      dout.poison();
      dout2.poison();
      const std::string shape = shape_str({cs.m, cs.n, cs.k}) + (cs.gated ? " gated" : "") + (cs.bias ? " bias" : "") +
                                (cs.f32_out ? " f32out" : "") + (ws_bytes > 0 ? " split" : "");
      int st = in.quantize_status;
      for (DeviceBuffer* o : {&dout, &dout2}) {
        if (st == 0)
          st = kiln_cuda_gemm_f8_narrow(o->ptr, cs.n, out_dtype, in.dq.as<uint8_t>(), in.dxs.as<float>(),
                                        cs.gated ? 1 : 0, in.dw.as<uint8_t>(), in.dws.as<float>(),
                                        cs.bias ? in.db.ptr : nullptr, cs.m, cs.n, cs.k, dtype,
                                        ws_bytes > 0 ? dwork.ptr : nullptr, ws_bytes, nullptr);
      }
      if (st != 0) { record_status("gemm_f8_narrow", dtype, shape, st); continue; }
      sync_or_die("gemm_f8_narrow");
      auto got = download(dout, ref.size(), out_dtype);
      auto again = download(dout2, ref.size(), out_dtype);
      const std::vector<double> allowance =
          accumulation_allowance(download_raw<uint8_t>(in.dq, cs.m * cs.k), download_raw<float>(in.dxs, cs.m), in.w,
                                 in.w_scales, cs.m, w_rows, cs.k);
      const std::vector<float> naive = rounded(ref, out_dtype);
      Comparison c = compare(got, ref, naive, 0.0);
      c.bound = 0;
      bool within = true;
      for (int64_t r = 0; r < cs.m; ++r) {
        for (int64_t j = 0; j < cs.n; ++j) {
          const int64_t i = r * cs.n + j;
          double allowed = 2.0 * std::fabs(naive[i] - ref[i]) + 1e-6 * std::fabs(ref[i]);
          if (cs.gated) {
            // d(silu(g) u) <= 1.1 |u| dg + |g| du, |g| and |u| at most their Cauchy-Schwarz bounds
            // (2^11 times their allowances); the gate and up rounding to dtype adds 2^-8 of each.
            const double eg = allowance[r * w_rows + j], eu = allowance[r * w_rows + cs.n + j];
            const double g = 0x1p11 * eg, u = 0x1p11 * eu;
            allowed += 1.2 * (1.1 * u * (eg + 0x1p-8 * g) + g * (eu + 0x1p-8 * u));
          } else {
            allowed += allowance[i];
          }
          c.bound = std::max(c.bound, allowed);
          if (std::isfinite(got[i]) && std::fabs(got[i] - ref[i]) > allowed) within = false;
        }
      }
      int64_t differ = 0;
      for (size_t i = 0; i < got.size(); ++i) differ += same_value(got[i], again[i]) ? 0 : 1;
      c.bad += differ;
      c.pass = c.bad == 0 && within;
      record("gemm_f8_narrow", dtype, shape, c, differ > 0 ? "a second call gave other bits" : "");
    }
  }
  // Products of other strip counts share one workspace (the engine's): a split product, another
  // with more splits in between, then the first again, bit-equal to its first answer.
  {
    const int64_t m = 24, k = 8192, n_a = 10240, n_b = 8192;
    auto random_codes = [](int64_t count) {
      std::vector<uint8_t> codes(count);
      uint64_t state = 88172645463325252ull;
      for (auto& c : codes) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        c = static_cast<uint8_t>(state % 0x7e);  // finite codes, positive and small
        if (state & 0x100) c |= 0x80;
      }
      return codes;
    };
    DeviceBuffer dq = upload_raw(random_codes(m * k)), dxs = upload_raw(std::vector<float>(m, 0.01f)),
                 dwa = upload_raw(random_codes(n_a * k)), dwb = upload_raw(random_codes(n_b * k)),
                 dws = upload_raw(std::vector<float>(n_a, 0.02f)), da(m * n_a * 4), da2(m * n_a * 4), db(m * n_b * 4);
    const int64_t ws = std::max(kiln_cuda_gemm_f8_narrow_workspace_size(m, n_a, k, 0),
                                kiln_cuda_gemm_f8_narrow_workspace_size(m, n_b, k, 0));
    DeviceBuffer work(ws > 0 ? ws : 256);
    CUDA_OK(cudaMemset(work.ptr, 0, work.bytes));
    int st = 0;
    for (auto [out, w, n] : {std::tuple{&da, &dwa, n_a}, std::tuple{&db, &dwb, n_b}, std::tuple{&da2, &dwa, n_a}}) {
      if (st == 0)
        st = kiln_cuda_gemm_f8_narrow(out->ptr, n, KILN_CUDA_F32, dq.as<uint8_t>(), dxs.as<float>(), 0,
                                      w->as<uint8_t>(), dws.as<float>(), nullptr, m, n, k, KILN_CUDA_F32, work.ptr, ws,
                                      nullptr);
    }
    if (st != 0) {
      record_status("gemm_f8_narrow", KILN_CUDA_F32, "shared workspace", st);
    } else {
      sync_or_die("gemm_f8_narrow");
      auto first = download_raw<float>(da, m * n_a), again = download_raw<float>(da2, m * n_a);
      Comparison c;
      for (size_t i = 0; i < first.size(); ++i) c.bad += (std::isfinite(first[i]) && same_value(first[i], again[i])) ? 0 : 1;
      c.pass = c.bad == 0 && ws > 0;
      record("gemm_f8_narrow", KILN_CUDA_F32, "24x10240x8192 after 24x8192x8192, one workspace", c,
             "the same bits as before the other product (and a split plan, ws > 0)");
    }
  }
  DeviceBuffer buf(1 << 20);
  const bool refused =
      kiln_cuda_gemm_f8_narrow(buf.ptr, 8, KILN_CUDA_BF16, buf.as<uint8_t>(), buf.as<float>(), 0, buf.as<uint8_t>(),
                               buf.as<float>(), nullptr, 129, 8, 128, KILN_CUDA_BF16, nullptr, 0,
                               nullptr) == KILN_CUDA_ERR_UNSUPPORTED &&
      kiln_cuda_gemm_f8_narrow(buf.ptr, 8, KILN_CUDA_BF16, buf.as<uint8_t>(), buf.as<float>(), 0, buf.as<uint8_t>(),
                               buf.as<float>(), nullptr, 20, 8, 192, KILN_CUDA_BF16, nullptr, 0,
                               nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT &&
      kiln_cuda_gemm_f8_narrow(buf.ptr, 8, KILN_CUDA_BF16, buf.as<uint8_t>() + 4, buf.as<float>(), 0,
                               buf.as<uint8_t>(), buf.as<float>(), nullptr, 20, 8, 128, KILN_CUDA_BF16, nullptr, 0,
                               nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT &&
      kiln_cuda_gemm_f8_narrow(buf.ptr, 4096, KILN_CUDA_BF16, buf.as<uint8_t>(), buf.as<float>(), 0,
                               buf.as<uint8_t>(), buf.as<float>(), nullptr, 24, 4096, 4096, KILN_CUDA_BF16, buf.ptr, 64,
                               nullptr) == KILN_CUDA_ERR_INVALID_ARGUMENT;
  Comparison c;
  c.pass = refused;
  record("gemm_f8_narrow", KILN_CUDA_BF16, "refusals", c,
         "129 rows, k=192, a misaligned xq and a short workspace must be refused");
}

void test_fp8() {
  if (!wanted("e4m3") && !wanted("gemv_f8") && !wanted("gemm_f8_narrow") && !wanted("fp8")) return;
  if (!kiln_cuda_supports_fp8()) {
    std::printf("SKIP   fp8: the device is older than compute capability 9.0\n");
    return;
  }
  if (wanted("quantize_e4m3") || wanted("fp8")) test_quantize_e4m3();
  if (wanted("dequantize_e4m3") || wanted("fp8")) test_dequantize_e4m3();
  if (wanted("gemv_f8") || wanted("fp8")) test_gemv_f8();
  if (wanted("gemm_f8_narrow") || wanted("fp8")) test_gemm_f8_narrow();
}

// The sampler against its CPU twin on the same logits, rows and penalty table: the ids and the
// counted table must be equal, the log-probabilities within 2e-5 (float vs double sums), their
// ranks and alternatives equal. Rows mix every parameter, with random 53-bit draws; some rows
// are all ties or a few distinct values (the radix selects' worst case).
void test_sample() {
  if (!wanted("sample")) return;
  auto float_word = [](float f) { int32_t w; std::memcpy(&w, &f, 4); return w; };
  auto word_float = [](int32_t w) { float f; std::memcpy(&f, &w, 4); return f; };
  struct Case { int64_t batch, vocab; int rounds; const char* name; };
  // Batches of 1 and 8 split a row over clusters of 8 blocks, 48 over 4, the larger ones not.
  const std::vector<Case> cases = small_mode ? std::vector<Case>{{12, 3000, 2, "12x3000"}, {1, 5000, 4, "1x5000"}}
                                  : std::vector<Case>{{1, 128256, 16, "1x128256"}, {8, 151936, 4, "8x151936"},
                                                      {48, 128256, 4, "48x128256"}, {256, 32000, 2, "256x32000"},
                                                      {4096, 50, 4, "4096x50"}};
  for (const Case& cs : cases) {
    const int64_t batch = cs.batch, vocab = cs.vocab;
    std::vector<float> logits = randn(batch * vocab, KILN_CUDA_F32, 2.0f);
    for (int64_t b = 0; b < batch; b += 11) {  // all ties, and four distinct values
      for (int64_t i = 0; i < vocab; ++i) logits[b * vocab + i] = (b / 11) % 2 == 0 ? 0.5f : static_cast<float>(i % 4);
    }
    // Penalty table: each even row has a table row of prompt ids, output counts and suppressed ids.
    const int64_t table_rows = batch;
    std::vector<uint32_t> table(table_rows * vocab);
    DeviceBuffer dtable(table.size() * 4);
    for (int64_t r = 0; r < table_rows; ++r) {
      std::vector<int32_t> ids;
      const int np = static_cast<int>(rng() % 40), no = static_cast<int>(rng() % 60), ns = static_cast<int>(rng() % 3);
      for (int i = 0; i < np + no + ns; ++i) ids.push_back(static_cast<int32_t>(rng() % std::min<int64_t>(vocab, 400)));
      DeviceBuffer dids = upload_raw(ids);
      if (kiln_cpu_reset_penalty_row(table.data(), table_rows, vocab, r, ids.data(), np, no, ns) != 0 ||
          kiln_cuda_reset_penalty_row(dtable.as<uint32_t>(), table_rows, vocab, r, dids.as<int32_t>(), np, no, ns,
                                      nullptr) != 0) {
        record_status("sample.reset_penalty_row", KILN_CUDA_F32, cs.name, -1);
        return;
      }
    }
    sync_or_die("reset_penalty_row");
    DeviceBuffer dl = upload_raw(logits);
    Comparison ids_c, table_c, lp_c;
    long long lp_checked = 0;
    for (int round = 0; round < cs.rounds; ++round) {
      std::vector<int32_t> rows_w(batch * KILN_SAMPLE_ROW_WORDS, 0);
      for (int64_t b = 0; b < batch; ++b) {
        int32_t* w = &rows_w[b * KILN_SAMPLE_ROW_WORDS];
        const int kind = static_cast<int>((b + round) % 8);
        const float temps[] = {0.0f, 1.0f, 0.7f, 1.3f, 0.8f, 0.5f, 2.0f, 0.9f};
        w[KILN_SAMPLE_TEMPERATURE] = float_word(temps[kind]);
        w[KILN_SAMPLE_TOP_K] = kind == 2 || kind == 5 ? static_cast<int32_t>(1 + rng() % 60) : (kind == 7 ? 1 : 0);
        w[KILN_SAMPLE_TOP_P] = kind == 3 || kind == 4 || kind == 5 ? static_cast<int32_t>(0xF3333333u - rng() % 0x40000000u)
                                                                   : 0;
        w[KILN_SAMPLE_MIN_P] = float_word(kind == 4 || kind == 6 ? 0.05f : 0.0f);
        const bool penalized = b % 2 == 0;
        w[KILN_SAMPLE_REPETITION] = float_word(penalized ? 1.2f : 1.0f);
        w[KILN_SAMPLE_PRESENCE] = float_word(penalized ? 0.5f : 0.0f);
        w[KILN_SAMPLE_FREQUENCY] = float_word(penalized ? 0.3f : 0.0f);
        w[KILN_SAMPLE_PENALTY_ROW] = penalized ? static_cast<int32_t>(b) : -1;
        w[KILN_SAMPLE_FLAGS] = penalized ? (KILN_SAMPLE_PENALIZE | (b % 4 == 0 ? KILN_SAMPLE_SUPPRESS : 0)) : 0;
        w[KILN_SAMPLE_LOGPROBS] = b % 3 == 0 ? static_cast<int32_t>(rng() % 21) : -1;
        const uint64_t r53 = rng() >> 11;
        w[KILN_SAMPLE_RANDOM_LO] = static_cast<int32_t>(r53 & 0xffffffffu);
        w[KILN_SAMPLE_RANDOM_HI] = static_cast<int32_t>(r53 >> 32);
      }
      std::vector<int32_t> cpu_ids(batch), cpu_lp(batch * KILN_SAMPLE_LOGPROB_WORDS, 0);
      if (kiln_cpu_sample(logits.data(), batch, vocab, rows_w.data(), table.data(), table_rows, cpu_ids.data(),
                          cpu_lp.data()) != 0) {
        record_status("sample", KILN_CUDA_F32, cs.name, -1);
        return;
      }
      DeviceBuffer drows = upload_raw(rows_w), dids(batch * 4), dlp(cpu_lp.size() * 4);
      dids.poison();
      CUDA_OK(cudaMemset(dlp.ptr, 0, dlp.bytes));
      const int st = kiln_cuda_sample(dl.as<float>(), batch, vocab, drows.as<int32_t>(), dtable.as<uint32_t>(), table_rows,
                                      dids.as<int32_t>(), dlp.as<int32_t>(), nullptr);
      if (st != 0) { record_status("sample", KILN_CUDA_F32, cs.name, st); return; }
      sync_or_die("sample");
      auto gpu_ids = download_raw<int32_t>(dids, batch);
      auto gpu_lp = download_raw<int32_t>(dlp, cpu_lp.size());
      for (int64_t b = 0; b < batch; ++b) {
        if (gpu_ids[b] != cpu_ids[b]) {
          if (ids_c.bad < 5)
            std::printf("  row %lld (kind %lld): gpu %d cpu %d\n", (long long)b, (long long)((b + round) % 8), gpu_ids[b],
                        cpu_ids[b]);
          ++ids_c.bad;
        }
        const int n = rows_w[b * KILN_SAMPLE_ROW_WORDS + KILN_SAMPLE_LOGPROBS];
        if (n < 0) continue;
        const int32_t* g = &gpu_lp[b * KILN_SAMPLE_LOGPROB_WORDS];
        const int32_t* c = &cpu_lp[b * KILN_SAMPLE_LOGPROB_WORDS];
        auto check = [&](float gv, float cv) {
          const double err = std::fabs(static_cast<double>(gv) - cv);
          lp_c.max_err = std::max(lp_c.max_err, err);
          if (!(err <= 2e-5 + 2e-6 * std::fabs(cv))) ++lp_c.bad;
          ++lp_checked;
        };
        check(word_float(g[0]), word_float(c[0]));
        if (g[1] != c[1]) ++lp_c.bad;
        for (int j = 0; j < std::min<int64_t>(n, vocab); ++j) {
          if (g[2 + 2 * j] != c[2 + 2 * j]) ++lp_c.bad;
          check(word_float(g[3 + 2 * j]), word_float(c[3 + 2 * j]));
        }
      }
    }
    auto gpu_table = download_raw<uint32_t>(dtable, table.size());
    for (size_t i = 0; i < table.size(); ++i) table_c.bad += gpu_table[i] != table[i];
    ids_c.pass = ids_c.bad == 0;
    table_c.pass = table_c.bad == 0;
    lp_c.bound = 2e-5;
    lp_c.pass = lp_c.bad == 0;
    const std::string shape = std::string(cs.name) + " x" + std::to_string(cs.rounds);
    record("sample.ids", KILN_CUDA_F32, shape, ids_c, "bad = ids unlike the CPU twin's");
    record("sample.penalty_table", KILN_CUDA_F32, shape, table_c, "bad = table words unlike the CPU's after the counts");
    record("sample.logprobs", KILN_CUDA_F32, shape, lp_c,
           std::to_string(lp_checked) + " values; bad = beyond 2e-5 or rank / id unlike the CPU's");
  }
}

}  // namespace

// ---- structured-output token masks ----------------------------------------------------------------

// The CUDA mask against the CPU twin, bit for bit: masked logits are -inf, the rest untouched,
// and rows no mask names unchanged (NaN-poisoned logits stay NaN where a mask keeps them).
void test_mask_logits() {
  if (!wanted("mask_logits")) return;
  for (auto [batch, vocab, num_rows] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 10, 1}, {5, 113, 3}, {8, 32000, 8}, {3, 151936, 2}, {64, 128256, 17}}) {
    const int64_t words = (vocab + 31) / 32;
    auto logits = randn(batch * vocab, KILN_CUDA_F32, 3.0f);
    for (int64_t i = 0; i < batch * vocab; i += 97) logits[i] = std::nanf("");
    std::vector<int32_t> masks(num_rows * words);
    std::uniform_int_distribution<uint32_t> bits;
    for (auto& w : masks) w = static_cast<int32_t>(bits(rng) & bits(rng));  // about a quarter kept
    std::vector<int32_t> row_ids(batch);
    for (int64_t b = 0; b < batch; ++b) row_ids[b] = static_cast<int32_t>(b);
    std::shuffle(row_ids.begin(), row_ids.end(), rng);
    row_ids.resize(num_rows);
    std::vector<float> ref = logits;
    kiln_cpu_mask_logits(ref.data(), batch, vocab, masks.data(), row_ids.data(), num_rows);
    DeviceBuffer dl = upload(logits, KILN_CUDA_F32);
    DeviceBuffer dm = upload_raw(masks), dr = upload_raw(row_ids);
    const std::string shape = shape_str({batch, vocab}) + " rows " + std::to_string(num_rows);
    const int st = kiln_cuda_mask_logits(dl.as<float>(), batch, vocab, dm.as<int32_t>(), dr.as<int32_t>(), num_rows,
                                         nullptr);
    if (st != 0) { record_status("mask_logits", KILN_CUDA_F32, shape, st); continue; }
    sync_or_die("mask_logits");
    auto got = download(dl, batch * vocab, KILN_CUDA_F32);
    Comparison c;
    for (int64_t i = 0; i < batch * vocab; ++i) {
      const bool same = (std::isnan(got[i]) && std::isnan(ref[i])) || got[i] == ref[i];
      c.bad += !same;
    }
    c.pass = c.bad == 0;
    record("mask_logits", KILN_CUDA_F32, shape, c, "bit-exact with the CPU; bad = differing logits");
  }
}

// The CUDA logit bias against the CPU twin, bit for bit, on distinct (row, id) entries.
void test_add_logit_bias() {
  if (!wanted("logit_bias")) return;
  for (auto [batch, vocab, count] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 10, 3}, {5, 113, 40}, {64, 128256, 5000}}) {
    auto logits = randn(batch * vocab, KILN_CUDA_F32, 3.0f);
    std::vector<int32_t> entries;
    std::uniform_int_distribution<int64_t> pick(0, batch * vocab - 1);
    std::uniform_real_distribution<float> bias(-100.0f, 100.0f);
    std::vector<bool> taken(batch * vocab);
    while (static_cast<int64_t>(entries.size()) < 3 * count) {
      const int64_t at = pick(rng);
      if (taken[at]) continue;
      taken[at] = true;
      const float b = bias(rng);
      int32_t bits;
      std::memcpy(&bits, &b, sizeof bits);
      entries.insert(entries.end(), {static_cast<int32_t>(at / vocab), static_cast<int32_t>(at % vocab), bits});
    }
    std::vector<float> ref = logits;
    kiln_cpu_add_logit_bias(ref.data(), batch, vocab, entries.data(), count);
    DeviceBuffer dl = upload(logits, KILN_CUDA_F32);
    DeviceBuffer de = upload_raw(entries);
    const std::string shape = shape_str({batch, vocab}) + " entries " + std::to_string(count);
    const int st = kiln_cuda_add_logit_bias(dl.as<float>(), batch, vocab, de.as<int32_t>(), count, nullptr);
    if (st != 0) { record_status("logit_bias", KILN_CUDA_F32, shape, st); continue; }
    sync_or_die("logit_bias");
    auto got = download(dl, batch * vocab, KILN_CUDA_F32);
    Comparison c;
    for (int64_t i = 0; i < batch * vocab; ++i) c.bad += got[i] != ref[i];
    c.pass = c.bad == 0;
    record("logit_bias", KILN_CUDA_F32, shape, c, "bit-exact with the CPU; bad = differing logits");
  }
}

int main(int argc, char** argv) {
  uint64_t seed = static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--small")) small_mode = true;
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else { std::fprintf(stderr, "usage: %s [--seed N] [--small] [--filter OP]\n", argv[0]); return 2; }
  }
  if (kiln_cuda_device_count() == 0) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("kiln_op_tests: seed %llu (rerun with --seed %llu), device %s (sm_%d%d), %s\n",
              (unsigned long long)seed, (unsigned long long)seed, prop.name, prop.major, prop.minor,
              small_mode ? "small sizes" : "full sizes");
  rng.seed(seed);

  test_rms_norm();
  test_head_rms_norm();
  test_rotary();
  test_kv_write();
  test_kv_write_e4m3();
  test_silu_and_mul();
  test_embedding_gather_bias();
  test_attention();
  test_attention_e4m3();
  test_argmax();
  test_gemv();
  test_fp8();
  test_sample();
  test_mask_logits();
  test_add_logit_bias();

  int failed = 0;
  std::map<std::string, std::pair<int, int>> per_op;  // op -> (pass, total)
  double worst_ratio = 0;
  for (const Row& r : rows) {
    auto& e = per_op[r.op + " " + r.dtype];
    e.second++;
    if (r.c.pass) e.first++; else failed++;
    if (r.c.bound > 0) worst_ratio = std::max(worst_ratio, r.c.max_err / r.c.bound);
  }
  std::printf("\n%-46s %8s\n", "op dtype", "passed");
  for (const auto& [name, pt] : per_op) std::printf("%-46s %4d/%-4d\n", name.c_str(), pt.first, pt.second);
  std::printf("\n%zu checks, %d failed, worst max_err/bound %.3f, seed %llu\n", rows.size(), failed, worst_ratio,
              (unsigned long long)seed);
  return failed ? 1 : 0;
}
