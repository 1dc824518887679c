#!/usr/bin/env bash
# Per-kernel times of the decode steps on the GPU machine (after scripts/gpu-bundle.sh): runs
# `kiln bench` at batch 1 under Nsight Compute, which times every kernel, graph nodes included,
# and writes one CSV row per kernel launch.
#   scripts/gpu-profile.sh [shape] [batch]      results under ${OUT:-/tmp/kiln-profile}
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
"$ncu" --target-processes all --clock-control none --csv --page raw \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size \
  .jre/bin/java -Xss4m -cp "$cp" ai.kiln.cli.KilnCli bench --model "$dir" --device cuda --batch "$batch" \
  --prompt-len 128 --output-len 6 --repeat 1 --max-model-len 1024 --json > "$out/profile-$shape-b$batch.csv" 2> "$out/profile-$shape-b$batch.err"
tail -3 "$out/profile-$shape-b$batch.err"
