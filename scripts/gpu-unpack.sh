#!/usr/bin/env bash
# On the GPU machine, from the repository root: unpacks .gpu-pack/kiln-gpu.tar.xz (made by
# scripts/gpu-bundle.sh) into .gpu and .jre. Python's tarfile, so that no xz tool is needed there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rm -rf .gpu .jre
python3 -c 'import tarfile, sys; tarfile.open(sys.argv[1]).extractall(".")' .gpu-pack/kiln-gpu.tar.xz
chmod -R u+x .jre/bin .gpu/bin
