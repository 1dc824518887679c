#!/usr/bin/env bash
# End-to-end benchmark on the GPU machine (after scripts/gpu-bundle.sh): makes random-weight models
# of real shapes, runs `kiln bench` on them at batch 1 and 64 (128-token prompts, 256 new tokens),
# and, with KILN_HF_PEER=1, Hugging Face transformers' eager generate on the same weights as the
# reference point (slow: about 12 tok/s at batch 1).
#   scripts/gpu-bench.sh [llama-3.2-1b llama-3-8b ...]      results under ${OUT:-/tmp/kiln-bench}
# KILN_BATCHES (default 1,64) sets the batch sizes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
out=${OUT:-/tmp/kiln-bench}
mkdir -p "$out"
shapes=("$@")
[[ ${#shapes[@]} -gt 0 ]] || shapes=(llama-3.2-1b llama-3-8b)
cp=".gpu/classes:$(ls .gpu/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
for shape in "${shapes[@]}"; do
  dir=/tmp/models/$shape
  [[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape "$shape" --out "$dir"
  # shellcheck disable=SC2086  # KILN_JAVA_OPTS: extra JVM options, e.g. -Dkiln.cuda.gemvMaxRows=0
  # --json: a JSON line per batch size on stdout (without it, a table); the progress stays on stderr.
  .jre/bin/java -Xss4m ${KILN_JAVA_OPTS:-} -cp "$cp" ai.kiln.cli.KilnCli bench --model "$dir" --device cuda --batch "${KILN_BATCHES:-1,64}" \
    --prompt-len 128 --output-len 256 --max-model-len 1024 --json | tee -a "$out/kiln-bench.jsonl"
  if [[ ${KILN_HF_PEER:-0} == 1 ]]; then
    # shellcheck disable=SC2046
    python3 scripts/bench_hf_peer.py --model "$dir" --batch $(echo "${KILN_BATCHES:-1,64}" | tr ',' ' ') \
      --prompt-len 128 --output-len 256 2>&1 | tee -a "$out/hf-bench.jsonl"
  fi
done
