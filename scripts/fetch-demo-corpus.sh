#!/usr/bin/env bash
# Writes the King James Bible as plain text (the demo model's corpus) from Debian's packages:
# bible-kjv-text holds the text (public domain: the translation of 1611) in the format of the
# `bible` program, which bible-kjv holds (GPL-2+; only run here, not shipped).
#   scripts/fetch-demo-corpus.sh OUT.txt
set -euo pipefail
out=${1:?usage: scripts/fetch-demo-corpus.sh OUT.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q bible-kjv bible-kjv-text >/dev/null)
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
# Every verse, Genesis 1:1 to Revelation 22:21, one chapter heading before each chapter.
"$work/root/usr/bin/bible" -p "$work/root/usr/lib" gen1:1-rev22:21 > "$out"
echo "$out: $(wc -c < "$out") bytes, $(grep -c . "$out") lines"
