#!/usr/bin/env bash
# Prepares what a run on a GPU machine without Java or Maven needs: the built classes (with the
# CUDA kernels and JNI glue), the test classes, every dependency jar and the JUnit console
# launcher under target/gpu-lib, and a Java runtime in .jre (needs ../shared/gpu/make-jre.sh or
# JDK_HOME's jlink). Then, on the GPU machine, from the repository root:
#   scripts/gpu-run-tests.sh            # the GPU-tagged tests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mvn -B -q test-compile -Dkiln.cuda=ON
mvn -B -q dependency:copy-dependencies -DincludeScope=test -DoutputDirectory=target/gpu-lib \
  -DexcludeArtifactIds=jmh-generator-annprocess
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.11.4 \
  -DoutputDirectory=target/gpu-lib
if [[ ! -x .jre/bin/java ]]; then
  jdk=${JDK_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
  "$jdk/bin/jlink" --add-modules java.base,java.logging,jdk.unsupported,java.management,java.naming,java.net.http,java.sql,jdk.httpserver \
    --strip-debug --no-header-files --no-man-pages --compress=2 --output .jre
fi
du -sh target/classes target/test-classes target/gpu-lib .jre
