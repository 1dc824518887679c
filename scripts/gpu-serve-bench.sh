#!/usr/bin/env bash
# Serving benchmark on the GPU machine (after scripts/gpu-bundle.sh): `kiln serve` on a random-weight
# model of a real shape, then `kiln bench serve` with ShareGPT-like lengths, greedy and sampled:
#   1. N requests all at once, greedy, then the same N at temperature 0.8 / top_p 0.95 (per-request
#      seeds), twice in turn (the first greedy run after 8 warm-up requests);
#   2. 2N/5 requests arriving as a Poisson process of RATE req/s, sampled the same way.
# Each run draws its own prompts (--seed 0 .. 4): a run repeating an earlier one's prompts would be
# served from the prefix cache. (Before 2026-12-01 every run used --seed 0.)
#   scripts/gpu-serve-bench.sh [shape]     (default llama-3-8b; N=1000, RATE=16, results under ${OUT:-/tmp/kiln-serve})
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
out=${OUT:-/tmp/kiln-serve}
mkdir -p "$out"
shape=${1:-llama-3-8b}
n=${N:-1000}
rate=${RATE:-16}
dir=/tmp/models/$shape
[[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape "$shape" --out "$dir"
cp=".gpu/classes:$(ls .gpu/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
kiln() { .jre/bin/java -Xss4m -cp "$cp" ai.kiln.cli.KilnCli "$@"; }
kiln serve --model "$dir" --device cuda --port 8000 --max-waiting "$n" --max-model-len 4096 \
  > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf http://127.0.0.1:8000/ready >/dev/null 2>&1 && break  # ready: the model is loaded
  kill -0 $server 2>/dev/null || { cat "$out/serve.log"; exit 1; }
  sleep 1
done
bench() { kiln bench serve --base-url http://127.0.0.1:8000 --model "$dir" "$@"; }
sampled=(--temperature 0.8 --top-p 0.95 --sampling-seed 0)
bench --seed 0 --num-prompts "$n" --num-warmups 8 --result-file "$out/greedy-1.json" 2> "$out/greedy-1.txt"
bench --seed 1 --num-prompts "$n" "${sampled[@]}" --result-file "$out/sampled-1.json" 2> "$out/sampled-1.txt"
bench --seed 2 --num-prompts "$n" --result-file "$out/greedy-2.json" 2> "$out/greedy-2.txt"
bench --seed 3 --num-prompts "$n" "${sampled[@]}" --result-file "$out/sampled-2.json" 2> "$out/sampled-2.txt"
bench --seed 4 --num-prompts $((n * 2 / 5)) "${sampled[@]}" --request-rate "$rate" \
  --result-file "$out/sampled-poisson.json" 2> "$out/sampled-poisson.txt"
curl -s http://127.0.0.1:8000/metrics | grep -E '^kiln_requests_(running|waiting)' > "$out/gauges-after.txt" || true
