#!/usr/bin/env bash
# FP8 benchmarks on the GPU machine (after scripts/gpu-bundle.sh and scripts/gpu-unpack.sh): the
# backend's bf16 and FP8 products on the Llama-3-8B projections (GemmBenchmark), torch's
# _scaled_mm / bf16 matmul on the same shapes as the peer, `kiln bench` of the 8B shape in bf16
# and with --quantization fp8, and the FP8 logits against bf16's over 128 teacher-forced steps
# (Fp8AgreementReport). Results under ${OUT:-/tmp/kiln-fp8-bench}.
#   scripts/gpu-fp8-bench.sh [gemm] [peer] [e2e] [agreement]
# KILN_BATCHES (default 1,64,256) sets the end-to-end batch sizes, KILN_PROMPT_LEN / KILN_OUTPUT_LEN /
# KILN_MAX_MODEL_LEN (128 / 256 / 1024) their lengths, KILN_E2E_RUNS (default "none fp8") the
# runs, each QUANTIZATION or QUANTIZATION:KV_CACHE_DTYPE ("fp8:fp8": FP8 weights and KV cache).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
out=${OUT:-/tmp/kiln-fp8-bench}
mkdir -p "$out"
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(gemm peer e2e agreement)
cp=".gpu/classes:.gpu/test-classes:$(ls .gpu/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
for step in "${steps[@]}"; do
  case "$step" in
    gemm) .jre/bin/java -cp "$cp" ai.kiln.backend.cuda.GemmBenchmark | tee "$out/gemm.jsonl" ;;
    peer) python3 scripts/bench_fp8_gemm_peer.py | tee "$out/gemm-peer.jsonl" ;;
    e2e)
      dir=/tmp/models/llama-3-8b
      [[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape llama-3-8b --out "$dir"
      # A run is QUANTIZATION or QUANTIZATION:KV_CACHE_DTYPE (e.g. fp8:fp8).
      for run in ${KILN_E2E_RUNS:-none fp8}; do
        quantization=${run%%:*}
        kv=auto
        [[ $run == *:* ]] && kv=${run#*:}
        .jre/bin/java -Xss4m -cp "$cp" ai.kiln.cli.KilnCli bench --model "$dir" --device cuda \
          --batch "${KILN_BATCHES:-1,64,256}" --prompt-len "${KILN_PROMPT_LEN:-128}" \
          --output-len "${KILN_OUTPUT_LEN:-256}" --max-model-len "${KILN_MAX_MODEL_LEN:-1024}" \
          --quantization "$quantization" --kv-cache-dtype "$kv" --json | tee -a "$out/kiln-bench-${run/:/-kv}.jsonl"
      done ;;
    agreement)
      dir=/tmp/models/llama-3-8b
      [[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape llama-3-8b --out "$dir"
      .jre/bin/java -cp "$cp" ai.kiln.backend.cuda.Fp8AgreementReport "$dir" 128 | tee "$out/agreement.jsonl" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
