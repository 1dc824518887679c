#!/usr/bin/env bash
# Serving throughput by scheduler configuration, on the GPU machine (after scripts/gpu-bundle.sh and
# scripts/gpu-unpack.sh): for each SEQS:TOKENS in CONFIGS, `kiln serve` with --max-num-seqs SEQS and
# --max-batched-tokens TOKENS (and a step trace, -Dkiln.stepTrace), then `kiln bench serve` with N
# ShareGPT-like requests sent at once: greedy after 8 warm-up requests, then sampled (temperature
# 0.8, top_p 0.95, per-request seeds). A config of "default" passes neither flag. Each run draws
# other prompts (--seed 0, 1, 2, ...): the same prompts again would find them in the prefix cache.
#   CONFIGS="default 512:8192" scripts/gpu-serve-configs.sh [shape]   (results under ${OUT:-/tmp/kiln-serve})
# SERVE_ARGS adds flags to every server, SERVE_JAVA_OPTS JVM options to every server (e.g. a flight
# recording), KILN_JAVA_OPTS JVM options to servers and clients. POISSON_RATE="R ..." adds a run per
# rate to each server: N requests sampled, arriving as a Poisson process of R requests/s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
out=${OUT:-/tmp/kiln-serve}
mkdir -p "$out"
shape=${1:-llama-3-8b}
n=${N:-1000}
# With the Llama 3 vocabulary where the bundle carries it: the server then detokenizes every token.
vocab=.gpu/vocab/llama3
if [[ -f $vocab/tokenizer.json ]]; then
  dir=/tmp/models/$shape-tokenizer
  [[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape "$shape" --tokenizer "$vocab" --out "$dir" \
    > "$out/make-model.log"
else
  dir=/tmp/models/$shape
  [[ -f $dir/config.json ]] || python3 scripts/make_bench_model.py --shape "$shape" --out "$dir" > "$out/make-model.log"
fi
cp=".gpu/classes:$(ls .gpu/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
# shellcheck disable=SC2086  # KILN_JAVA_OPTS holds several options
kiln() { .jre/bin/java -Xss4m ${KILN_JAVA_OPTS:-} "$@"; }
for config in ${CONFIGS:-default 512:8192 1024:16384}; do
  name=${config/:/-}
  flags=()
  if [[ $config != default ]]; then
    flags=(--max-num-seqs "${config%%:*}" --max-batched-tokens "${config##*:}")
  fi
  # exec: $! is then the server's own process, which the kill below stops.
  # shellcheck disable=SC2086
  (exec .jre/bin/java -Xss4m ${KILN_JAVA_OPTS:-} ${SERVE_JAVA_OPTS:-} -Dkiln.stepTrace="$out/steps-$name.csv" -cp "$cp" ai.kiln.cli.KilnCli \
    serve --model "$dir" --device cuda --port 8000 --max-waiting "$n" --max-model-len 4096 "${flags[@]}" \
    ${SERVE_ARGS:-} > "$out/serve-$name.log" 2>&1) &
  server=$!
  for _ in $(seq 1 300); do
    curl -sf http://127.0.0.1:8000/ready >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$out/serve-$name.log"; exit 1; }
    sleep 1
  done
  bench() { kiln -cp "$cp" ai.kiln.cli.KilnCli bench serve --base-url http://127.0.0.1:8000 --model "$dir" "$@"; }
  bench --seed 0 --num-prompts "$n" --num-warmups 8 --result-file "$out/greedy-$name.json" 2> "$out/greedy-$name.txt"
  bench --seed 1 --num-prompts "$n" --temperature 0.8 --top-p 0.95 --sampling-seed 0 \
    --result-file "$out/sampled-$name.json" 2> "$out/sampled-$name.txt"
  seed=2
  for rate in ${POISSON_RATE:-}; do
    bench --seed $seed --num-prompts "$n" --temperature 0.8 --top-p 0.95 --sampling-seed 0 --request-rate "$rate" \
      --result-file "$out/poisson$rate-$name.json" 2> "$out/poisson$rate-$name.txt"
    seed=$((seed + 1))
  done
  curl -s http://127.0.0.1:8000/metrics | grep -E '^kiln_' > "$out/metrics-$name.txt" || true
  kill $server
  wait $server || true
  python3 - "$out" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
import glob, os
for path in [f"{out}/greedy-{name}.json", f"{out}/sampled-{name}.json"] + sorted(glob.glob(f"{out}/poisson*-{name}.json")):
    if not os.path.exists(path):
        continue
    run = os.path.basename(path)[:-len(f"-{name}.json")]
    r = json.load(open(path))
    print(f"{name:>12} {run:8} completed {r['completed']:5} failed {r['failed']:3} output {r['output_throughput']:8.0f} tok/s"
          f"  ttft median {r['median_ttft_ms']:8.0f} p99 {r['p99_ttft_ms']:8.0f} ms"
          f"  tpot median {r['median_tpot_ms']:6.1f} p99 {r['p99_tpot_ms']:6.1f} ms")
PY
done
