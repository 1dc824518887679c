#!/usr/bin/env bash
# Runs the GPU-tagged tests with the runtime and jars that scripts/gpu-bundle.sh prepared.
# Extra arguments go to the JUnit console launcher (e.g. --select-class ai.kiln.backend.cuda.CudaFixtureModelTest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
launcher=$(ls target/gpu-lib/junit-platform-console-standalone-*.jar)
cp="target/classes:target/test-classes:$(ls target/gpu-lib/*.jar | grep -v console-standalone | tr '\n' ':')"
if [[ $# -eq 0 ]]; then
  set -- --scan-class-path target/test-classes --include-tag gpu
fi
exec .jre/bin/java -Xss4m -jar "$launcher" execute --class-path "$cp" --details=tree "$@"
