#!/usr/bin/env bash
# CPU peer benchmark: llama.cpp's llama-bench and Jlama on a Hugging Face Llama model directory (the
# random-weight bf16 ones of scripts/make_bench_model.py), measured the way `kiln bench` measures
# Kiln: a 128-token prompt, then 64 new tokens one at a time (greedy), 2 threads, so the peers and
# Kiln can be run one after the other on the same weights and the same machine.
#
#   scripts/cpu-peer-bench.sh MODEL_DIR            e.g. /tmp/llama-154m or /tmp/llama-1b-tok
#
# What it does (each step skipped when its result is already there, so a second run only measures):
#  1. Builds llama.cpp from the source that npm's node-llama-cpp@3.22.1 ships as a git bundle
#     (llama.cpp commit de3ff81): cmake -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release, targets
#     llama-bench and llama-quantize, -j2. Jlama: com.github.tjake:jlama-core and jlama-native
#     (linux-x86_64) 0.8.4 from Maven Central, and scripts/jlama-bench/JlamaBench.java compiled
#     against them with Java 25.
#  2. Converts the model with that tree's convert_hf_to_gguf.py to GGUF f16 and bf16, and
#     llama-quantize's the bf16 file to q8_0 (reconverted when the safetensors are newer).
#  3. llama-bench -t 2 -p 128 -n 64 -r 2 on each GGUF (a warm-up run, then 2 repetitions; the
#     figure is their mean, the samples are printed too).
#  4. JlamaBench: bf16 weights as stored, F32 working memory (Jlama's default), its native SIMD
#     operations (jlama-native); a warm-up round (printed, not a RESULT), then 2 measured rounds.
#  With KILN_BENCH=1 it first runs `kiln bench` (KILN, default bin/kiln: a current build of this
#  checkout, `mvn -B package -DskipTests`) on the model with the same lengths and threads, with the
#  weights as stored and with --quantization int8 (KILN_QUANTIZATIONS, default "none int8"); its
#  prompt tok/s is the prompt length / the median time to first token, the best of 2 runs.
#
# Output: one line per measurement, `RESULT system=... dtype=... prompt_tok_s=... decode_tok_s=...`,
# repeated as a summary at the end, with the load average (uptime) and any other busy process before
# each measurement, and others_cpu=N%: the share of the machine's CPU time that other processes took
# while the measuring process ran (load, warm-up and all). The figures mean little while something
# else runs on the machine; WAIT_IDLE=S waits up to S seconds before each measurement for no other
# process to use over 25% of a core.
#
# Everything downloaded or built goes under the work dir, never into the repository:
#   PEERS_DIR   work dir (default /tmp/peers): llama.cpp/ (build/bin/llama-bench, llama-quantize),
#               gguf/<model name>/model-{f16,bf16,q8_0}.gguf, jlama/ (lib/, classes/), m2/ (Maven)
#   PYTHON      Python with torch, safetensors, numpy, sentencepiece (default /tmp/demo-venv/bin/python;
#               sentencepiece is pip-installed into it when missing); the tree's gguf-py is used as is
#   JAVA25_HOME (default /usr/lib/jvm/temurin-25-jdk-amd64)
#   THREADS (2), PROMPT (128), GEN (64), REPS (2), DTYPES ("f16 bf16 q8_0"), JOBS (2, build)
#   JLAMA_OPS   native (default) or panama (Jlama's pure-Java Vector API operations)
#   JLAMA_WORKING  F32 (default) or BF16, Jlama's working (activation) dtype; BF16 works with
#               JLAMA_OPS=panama only (with the native ones no logit comes out above -inf)
#   SKIP_LLAMA=1 / SKIP_JLAMA=1 leave a peer out.
set -euo pipefail

model=${1:?usage: scripts/cpu-peer-bench.sh MODEL_DIR}
model=$(cd "$model" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${PEERS_DIR:-/tmp/peers}
python=${PYTHON:-/tmp/demo-venv/bin/python}
java25=${JAVA25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
kiln=${KILN:-$repo/bin/kiln}
threads=${THREADS:-2} prompt=${PROMPT:-128} gen=${GEN:-64} reps=${REPS:-2} jobs=${JOBS:-2}
read -r -a dtypes <<< "${DTYPES:-f16 bf16 q8_0}"
node_llama_cpp=3.22.1 llama_commit=de3ff81 jlama_version=0.8.4
name=$(basename "$model")
results=()

log() { echo "cpu-peer-bench: $*" >&2; }
busy() { # other processes above 25% of a core now (top's second frame: a half-second sample)
  top -b -n2 -d0.5 | awk '/^top -/ {frame++} frame == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 25 {printf "%s(pid %s, %s%%) ", $12, $1, $9}'
}
load() { # before each measurement: the load average, what else runs; with WAIT_IDLE=S, waits up to S s for quiet
  local others waited=0
  others=$(busy)
  while [[ -n $others && $waited -lt ${WAIT_IDLE:-0} ]]; do
    sleep 5 && waited=$((waited + 5)) && others=$(busy)
  done
  echo "load: $(uptime | sed 's/.*load average/load average/')${others:+; busy: $others}$( ((waited > 0)) && echo " (waited ${waited} s)")"
  cpu_mark
}
# The share of the machine's CPU time that went to other processes since cpu_mark: all the CPU time
# /proc/stat counts, less what this shell's finished children (the benchmark) used.
cpu_ticks() { # system-wide non-idle ticks, and this shell's reaped children's ticks
  local cpu u n s i w q sq rest st
  read -r cpu u n s i w q sq rest < /proc/stat
  st=$(< "/proc/$$/stat")
  read -r -a st <<< "${st##*) }" # from field 3 on: cutime (16) and cstime (17) are [13] and [14]
  echo "$((u + n + s + q + sq)) $((st[13] + st[14]))"
}
cpu_mark() { read -r mark_sys mark_self <<< "$(cpu_ticks)"; mark_ns=$(date +%s%N); }
others_pct() {
  local sys self hz
  read -r sys self <<< "$(cpu_ticks)"
  hz=$(getconf CLK_TCK)
  awk -v d=$((sys - mark_sys - self + mark_self)) -v ns=$(($(date +%s%N) - mark_ns)) -v hz="$hz" -v n="$(nproc)" \
    'BEGIN {p = 100 * d / (n * hz * ns / 1e9); printf "%.0f", p < 0 ? 0 : p}'
}
result() { # system dtype prompt_tok_s decode_tok_s [note]; call it once the benchmark's process has ended
  local line="RESULT system=$1 dtype=$2 prompt_tok_s=$3 decode_tok_s=$4 others_cpu=${others:-?}%${5:+ ($5)}"
  echo "$line"
  results+=("$line")
}

for f in config.json tokenizer.json; do
  [[ -f $model/$f ]] || { log "$model/$f missing (make_bench_model.py --tokenizer DIR writes one)"; exit 2; }
done
mkdir -p "$work"

build_llama() {
  local src=$work/llama.cpp bin=$work/llama.cpp/build/bin
  if [[ -x $bin/llama-bench && -x $bin/llama-quantize ]]; then return; fi
  if [[ ! -d $src/.git ]]; then
    local tgz=$work/node-llama-cpp-$node_llama_cpp.tgz
    [[ -f $tgz ]] || (cd "$work" && npm pack --silent "node-llama-cpp@$node_llama_cpp" >/dev/null)
    rm -rf "$work/npm" && mkdir -p "$work/npm"
    tar -xzf "$tgz" -C "$work/npm" package/llama/gitRelease.bundle
    git -c advice.detachedHead=false clone -q "$work/npm/package/llama/gitRelease.bundle" "$src"
  fi
  local head
  head=$(git -C "$src" rev-parse --short=7 HEAD)
  [[ $head == "$llama_commit" ]] || log "warning: llama.cpp at $head, expected $llama_commit"
  # No network at build or run time: no OpenSSL (downloads), no server, tests or examples.
  log "building llama.cpp in $src/build (-j$jobs; output in $work/llama-build.log)"
  { cmake -S "$src" -B "$src/build" -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF &&
    cmake --build "$src/build" --target llama-bench llama-quantize -j"$jobs"; } >"$work/llama-build.log" 2>&1 \
    || { tail -30 "$work/llama-build.log" >&2; exit 1; }
}

build_jlama() {
  local dir=$work/jlama source=$repo/scripts/jlama-bench/JlamaBench.java
  if [[ ! -f $dir/lib/jlama-core-$jlama_version.jar || ! -f $dir/lib/jlama-native-$jlama_version-linux-x86_64.jar ]]; then
    mkdir -p "$dir"
    cat > "$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>peers</groupId><artifactId>jlama-deps</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>com.github.tjake</groupId><artifactId>jlama-core</artifactId><version>$jlama_version</version></dependency>
    <dependency><groupId>com.github.tjake</groupId><artifactId>jlama-native</artifactId><version>$jlama_version</version>
      <classifier>linux-x86_64</classifier></dependency>
  </dependencies>
</project>
EOF
    log "fetching Jlama $jlama_version into $dir/lib"
    (cd "$dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$dir/lib" -Dmaven.repo.local="$work/m2") \
      >"$dir/mvn.log" 2>&1 || { tail -30 "$dir/mvn.log" >&2; exit 1; }
  fi
  if [[ ! -f $dir/classes/JlamaBench.class || $source -nt $dir/classes/JlamaBench.class ]]; then
    mkdir -p "$dir/classes"
    "$java25/bin/javac" -XDsuppressNotes --add-modules jdk.incubator.vector --release 25 -cp "$dir/lib/*" \
      -d "$dir/classes" "$source" 2>&1 | grep -v 'incubat' >&2 || true
    [[ -f $dir/classes/JlamaBench.class ]] || { log "JlamaBench did not compile"; exit 1; }
  fi
}

convert() { # dtype -> path of the GGUF file
  local dtype=$1 dir=$work/gguf/$name out src=$work/llama.cpp
  out=$dir/model-$dtype.gguf
  local newest
  newest=$(ls -t "$model"/*.safetensors "$model"/config.json "$model"/tokenizer.json | head -1)
  if [[ ! -f $out || $newest -nt $out ]]; then
    mkdir -p "$dir"
    if [[ $dtype == f16 || $dtype == bf16 ]]; then
      log "converting $model to $out"
      "$python" "$src/convert_hf_to_gguf.py" "$model" --outtype "$dtype" --outfile "$out.tmp" >"$out.log" 2>&1 \
        || { tail -20 "$out.log" >&2; exit 1; }
    else
      local bf16
      bf16=$(convert bf16)
      log "quantizing $bf16 to $out"
      "$src/build/bin/llama-quantize" "$bf16" "$out.tmp" "${dtype^^}" >"$out.log" 2>&1 \
        || { tail -20 "$out.log" >&2; exit 1; }
    fi
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

kiln_bench() { # quantization: none (weights as stored, bf16) or int8
  local out label=bf16
  [[ $1 == none ]] || label=$1
  load
  # shellcheck disable=SC2086
  if ! out=$($kiln bench --model "$model" --device cpu --threads "$threads" --batch 1 \
      --prompt-len "$prompt" --output-len "$gen" --repeat "$reps" --max-model-len $((prompt + gen + 64)) \
      --kv-cache-mib 512 --quantization "$1" --json); then
    log "kiln bench failed; going on with the peers"
    return
  fi
  echo "$out"
  local fields
  fields=$("$python" -c '
import json, sys
j = json.loads(sys.stdin.read().strip().splitlines()[-1])
print("%.2f %.2f %s" % (j["prompt_len"] / (j["ttft_ms_median"] / 1000), j["decode_tokens_per_s"], j["device"].replace(" ", "_")))
' <<< "$out")
  read -r p d dev <<< "$fields"
  others=$(others_pct)
  result kiln "$label" "$p" "$d" "best of $reps, $dev"
}

llama_bench() { # dtype gguf
  local out
  load
  out=$("$work/llama.cpp/build/bin/llama-bench" -m "$2" -t "$threads" -p "$prompt" -n "$gen" -r "$reps" -o jsonl)
  local fields
  fields=$("$python" -c '
import json, sys
p = d = None
for line in sys.stdin:
    j = json.loads(line)
    s = "%.2f" % j["avg_ts"], "+-%.2f: %s" % (j["stddev_ts"], " ".join("%.2f" % t for t in j["samples_ts"]))
    if j["n_prompt"] > 0: p = s
    else: d = s
print(p[0], d[0], p[1], d[1], sep="|")
' <<< "$out")
  IFS='|' read -r p d pnote dnote <<< "$fields"
  others=$(others_pct)
  result llama.cpp "$1" "$p" "$d" "mean of $reps, prompt $pnote, decode $dnote"
}

jlama_bench() {
  local flags=() out line before=${#results[@]} working=${JLAMA_WORKING:-F32}
  [[ ${JLAMA_OPS:-native} == panama ]] && flags+=(-Djlama.force_panama_tensor_operations=true)
  load
  out=$("$java25/bin/java" --add-modules jdk.incubator.vector --enable-preview --enable-native-access=ALL-UNNAMED \
      "${flags[@]}" -cp "$work/jlama/classes:$work/jlama/lib/*" JlamaBench "$model" --threads "$threads" \
      --prompt "$prompt" --gen "$gen" --reps "$reps" --working-dtype "$working" 2>&1) \
    || { echo "$out" >&2; log "JlamaBench failed"; exit 1; }
  others=$(others_pct)
  while IFS= read -r line; do
    [[ $line =~ ^(WARNING:|SLF4J:) ]] && continue
    echo "$line"
    if [[ $line =~ round=([0-9]+).*prompt\ [0-9]+\ tok\ in\ [0-9.]+\ s\ =\ ([0-9.]+)\ tok/s.*decode\ [0-9]+\ tok\ in\ [0-9.]+\ s\ =\ ([0-9.]+)\ tok/s ]]; then
      result "jlama-${JLAMA_OPS:-native}" "bf16(${working}_working)" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" "round ${BASH_REMATCH[1]}"
    fi
  done <<< "$out"
  [[ ${#results[@]} -gt $before ]] || { log "JlamaBench measured nothing"; exit 1; }
}

echo "cpu-peer-bench: $model ($name), $threads threads, prompt $prompt, $gen new tokens, $reps repetitions; $(nproc) cores"
load
[[ ${SKIP_LLAMA:-0} == 1 ]] || build_llama
[[ ${SKIP_JLAMA:-0} == 1 ]] || build_jlama
if [[ ${SKIP_LLAMA:-0} != 1 ]]; then
  "$python" -c 'import sentencepiece' 2>/dev/null || "$python" -m pip install -q sentencepiece >&2
  ggufs=()
  for dtype in "${dtypes[@]}"; do ggufs+=("$(convert "$dtype")"); done
  echo "llama.cpp $(git -C "$work/llama.cpp" rev-parse --short=7 HEAD): GGML_NATIVE=ON, -march=native =" \
    "$(gcc -march=native -Q --help=target 2>/dev/null | awk '$1 == "-march=" {print $2}')," \
    "$(gcc -march=native -Q --help=target 2>/dev/null | awk '$2 == "[enabled]" && $1 ~ /^-mavx512(f|bf16|vnni)$/ {printf "%s ", $1}')"
fi
if [[ ${KILN_BENCH:-0} == 1 ]]; then
  for quantization in ${KILN_QUANTIZATIONS:-none int8}; do kiln_bench "$quantization"; done
fi
if [[ ${SKIP_LLAMA:-0} != 1 ]]; then
  for i in "${!dtypes[@]}"; do llama_bench "${dtypes[$i]}" "${ggufs[$i]}"; done
fi
[[ ${SKIP_JLAMA:-0} == 1 ]] || jlama_bench
load
echo "== summary: $name, $threads threads, pp$prompt / tg$gen =="
printf '%s\n' "${results[@]}"
