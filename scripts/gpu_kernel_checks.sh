#!/usr/bin/env bash
# Runs Kiln's CUDA kernel checks on the GPU machine: the op-test harness, compute-sanitizer
# (memcheck, racecheck) on the attention cases at reduced sizes, the kernel benchmark and the
# torch peers. Binaries come from BIN (a folder holding kiln_op_tests, kiln_kernel_bench and the
# libraries), or are built with CMake when BIN is unset. Logs go to OUT (default ./gpu-logs).
#
#   BIN=.dev/carry OUT=/tmp/logs scripts/gpu_kernel_checks.sh [tests] [sanitize] [bench] [peers]
set -u -o pipefail
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests bench peers sanitize)

if [ -z "${BIN:-}" ]; then
  cmake -S . -B /tmp/kiln-build -DCMAKE_BUILD_TYPE=Release -DKILN_CPU_CLASSES_DIR=/tmp/kiln-build/classes -DKILN_CUDA_CLASSES_DIR=/tmp/kiln-build/classes >"$OUT/cmake.log" 2>&1 &&
    cmake --build /tmp/kiln-build --parallel "$(nproc)" --target kiln_op_tests kiln_kernel_bench >>"$OUT/cmake.log" 2>&1 ||
    { tail -50 "$OUT/cmake.log"; exit 2; }
  BIN=/tmp/kiln-build/bin
  mkdir -p "$BIN"
  cp /tmp/kiln-build/cuda-kernels/kiln_op_tests /tmp/kiln-build/cuda-kernels/kiln_kernel_bench \
     /tmp/kiln-build/classes/ai/kiln/backend/cuda/linux-x86_64/*.so* /tmp/kiln-build/classes/ai/kiln/backend/cpu/linux-x86_64/*.so* "$BIN"/
fi
# The libraries sit beside the binaries, or in the bundle's classes (scripts/gpu-bundle.sh).
bundle_libs=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.gpu/classes/ai/kiln/backend
export LD_LIBRARY_PATH="$(cd "$BIN" && pwd):$bundle_libs/cuda/linux-x86_64:$bundle_libs/cpu/linux-x86_64:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee "$OUT/gpu.txt"
status=0
for step in "${steps[@]}"; do
  case "$step" in
    tests)
      timeout 300 "$BIN/kiln_op_tests" ${TEST_ARGS:-} 2>&1 | tee "$OUT/tests.log"
      rc=${PIPESTATUS[0]}
      echo "kiln_op_tests exit $rc" | tee -a "$OUT/tests.log"
      [ "$rc" -ne 0 ] && status=1
      for path in ${PREFILL_PATHS:-sm90v1 sm90v4 mma}; do  # the other prefill kernels on the same cases
        KILN_CUDA_PREFILL=$path timeout 200 "$BIN/kiln_op_tests" --filter attention_prefill 2>&1 |
          grep -E "^(FAIL|FATAL)|checks," | sed "s/^/[$path] /" | tee -a "$OUT/tests.log"
        [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
      done
      if [ "$rc" -eq 2 ]; then  # a fatal CUDA error stops the process: run each op group on its own
        for op in rms_norm rotary write_kv_cache silu_and_mul embedding gather_rows add_bias attention_prefill \
                  attention_decode argmax gemv sample; do
          timeout 200 "$BIN/kiln_op_tests" --filter "$op" 2>&1 | grep -E "^(PASS|FAIL|FATAL)|checks," | tee -a "$OUT/tests-groups.log"
        done
      fi
      ;;
    sanitize)
      for tool in memcheck racecheck; do
        timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/kiln_op_tests" --small --filter attention \
          >"$OUT/sanitizer-$tool.log" 2>&1
        rc=$?
        echo "compute-sanitizer $tool: exit $rc; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer-$tool.log" | tail -1)"
        grep -E "^(PASS|FAIL)" "$OUT/sanitizer-$tool.log" | awk '{print $1}' | sort | uniq -c
      done
      timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/kiln_op_tests" --small \
        >"$OUT/sanitizer-memcheck-all.log" 2>&1
      echo "compute-sanitizer memcheck, every op (small): exit $?; $(grep 'ERROR SUMMARY' "$OUT/sanitizer-memcheck-all.log" | tail -1)"
      ;;
    bench)
      timeout 240 "$BIN/kiln_kernel_bench" 2>&1 | tee "$OUT/bench.log"
      ;;
    peers)
      PYTHONUNBUFFERED=1 timeout 240 python3 scripts/bench_kernel_peers.py 2>&1 | tee "$OUT/peers.log"
      ;;
  esac
done
exit $status
