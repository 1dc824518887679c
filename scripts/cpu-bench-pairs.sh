#!/usr/bin/env bash
# Kiln against llama.cpp on the CPU in pairs run back to back: for each round, `kiln bench` with the
# weights as stored, then llama-bench on the F16 GGUF; `kiln bench --quantization int8`, then
# llama-bench on the Q8_0 GGUF. A 128-token prompt, 64 new tokens, 2 threads. On a machine whose
# memory bandwidth drifts (a shared VM), only the two figures of one pair compare.
#
#   scripts/cpu-bench-pairs.sh ROUNDS MODEL_DIR
#
# Needs llama.cpp and the GGUF files that scripts/cpu-peer-bench.sh MODEL_DIR builds and converts
# (under PEERS_DIR, default /tmp/peers), and a current build of this checkout for KILN (default
# bin/kiln; `mvn -B package -DskipTests`). Prints one line per pair:
#   round R MODEL kiln-none PROMPT_TOK_S DECODE_TOK_S llama.cpp-f16 PROMPT_TOK_S DECODE_TOK_S
# Kiln's figures are the best of 2 runs in one process (the first warms the JIT); llama-bench's
# is one run after its own warm-up. Kiln's prompt tok/s is 128 / the time to the first token.
set -euo pipefail

rounds=${1:?usage: scripts/cpu-bench-pairs.sh ROUNDS MODEL_DIR}
model=$(cd "${2:?usage: scripts/cpu-bench-pairs.sh ROUNDS MODEL_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kiln=${KILN:-$repo/bin/kiln}
work=${PEERS_DIR:-/tmp/peers}
gguf=$work/gguf/$(basename "$model")
llama_bench=$work/llama.cpp/build/bin/llama-bench
for f in "$llama_bench" "$gguf/model-f16.gguf" "$gguf/model-q8_0.gguf"; do
  [[ -e $f ]] || { echo "cpu-bench-pairs: $f is missing: run scripts/cpu-peer-bench.sh $model first" >&2; exit 1; }
done

for round in $(seq 1 "$rounds"); do
  for quantization in none int8; do
    kiln_figures=$("$kiln" bench --model "$model" --device cpu --threads 2 --batch 1 --prompt-len 128 \
        --output-len 64 --repeat 2 --max-model-len 256 --kv-cache-mib 512 --quantization "$quantization" --json \
        2>/dev/null | tail -1 | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
print("%.1f %.2f" % (j["prompt_len"] / (j["ttft_ms_median"] / 1000), j["decode_tokens_per_s"]))')
    peer_type=f16
    [[ $quantization == none ]] || peer_type=q8_0
    peer_figures=$("$llama_bench" -m "$gguf/model-$peer_type.gguf" -t 2 -p 128 -n 64 -r 1 -o jsonl 2>/dev/null \
        | python3 -c '
import json, sys
prompt = decode = 0
for line in sys.stdin:
    j = json.loads(line)
    if j["n_prompt"] > 0:
        prompt = j["avg_ts"]
    if j["n_gen"] > 0:
        decode = j["avg_ts"]
print("%.1f %.2f" % (prompt, decode))')
    echo "round $round $(basename "$model") kiln-$quantization $kiln_figures llama.cpp-$peer_type $peer_figures"
  done
done
