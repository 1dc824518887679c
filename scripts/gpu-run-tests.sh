#!/usr/bin/env bash
# Runs GPU tests with what scripts/gpu-bundle.sh prepared. Arguments go to the JUnit console
# launcher; without any, every GPU-tagged test of the backend package runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
launcher=$(ls .gpu/lib/junit-platform-console-standalone-*.jar)
cp=".gpu/classes:.gpu/test-classes:$(ls .gpu/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
if [[ $# -eq 0 ]]; then
  set -- --select-package ai.kiln.backend --include-tag gpu
fi
# KILN_TEST_JAVA_OPTS: extra JVM options, e.g. -Dkiln.test.reference=... for the real-shape tests.
# shellcheck disable=SC2086
exec .jre/bin/java -Xss4m ${KILN_TEST_JAVA_OPTS:-} -jar "$launcher" execute --class-path "$cp" --details=tree --disable-banner "$@"
