#!/usr/bin/env bash
# Per-kernel times of the decode steps on the GPU machine (after scripts/gpu-bundle.sh): runs
# `kiln bench` at batch 1 under Nsight Compute, which times every kernel, graph nodes included,
# and writes one CSV row per kernel launch.
#   scripts/gpu-profile.sh [shape] [batch]      results under ${OUT:-/tmp/kiln-profile}
# STEPS=FIRST-LAST profiles those engine steps alone (-Dkiln.profileSteps, Nsight Compute started
# with collection off), e.g. one decode step; PROMPT_LEN and OUTPUT_LEN set the requests (128, 6).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
out=${OUT:-/tmp/kiln-profile}
shape=${1:-llama-3.2-1b}
batch=${2:-1}
mkdir -p "$out"
dir=/tmp/models/$shape
[[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape "$shape" --out "$dir"
cp=".gpu/classes:$(ls .gpu/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
ncu_args=()
java_opts=()
if [[ -n ${STEPS:-} ]]; then
  ncu_args=(--profile-from-start off)
  java_opts=("-Dkiln.profileSteps=$STEPS")
fi
"$ncu" --target-processes all --clock-control none --csv --page raw "${ncu_args[@]}" \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size \
  .jre/bin/java -Xss4m "${java_opts[@]}" -cp "$cp" ai.kiln.cli.KilnCli bench --model "$dir" --device cuda \
  --batch "$batch" --prompt-len "${PROMPT_LEN:-128}" --output-len "${OUTPUT_LEN:-6}" --repeat 1 --max-model-len 1024 --json > "$out/profile-$shape-b$batch.csv" 2> "$out/profile-$shape-b$batch.err"
tail -3 "$out/profile-$shape-b$batch.err"
