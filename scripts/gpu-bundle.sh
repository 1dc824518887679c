#!/usr/bin/env bash
# Prepares what a run on a GPU machine without Java or Maven needs, kept small because it travels:
#   .gpu/classes       main classes with the native libraries (CUDA kernels included)
#   .gpu/test-classes  test classes (test resources are read from test/resources in the tree)
#   .gpu/lib           the jars the GPU tests and benchmarks load, and the JUnit console launcher
#   .jre               a Java runtime (jlink of the local JDK)
# Then, on the GPU machine, from the repository root: scripts/gpu-run-tests.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=$PWD/.gpu-build
rm -rf .gpu
mkdir -p .gpu/lib
# Hopper only: the GPU machine is an H100/H200, and half the library's size keeps the bundle small.
mvn -B -q test-compile -Dkiln.cuda=ON -Dkiln.build.dir="$build" \
  "-Dkiln.cuda.gencode=-gencode=arch=compute_90a,code=sm_90a"
mvn -B -q dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$build/gpu-lib" -Dkiln.build.dir="$build"
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.11.4 \
  -DoutputDirectory=.gpu/lib
for jar in javacpp cuda jackson; do
  cp "$build"/gpu-lib/"$jar"-*.jar .gpu/lib/
done
cp -r "$build"/classes .gpu/classes
mkdir -p .gpu/test-classes && cp -r "$build"/test-classes/ai .gpu/test-classes/
if [[ ! -x .jre/bin/java ]]; then
  jdk=${JDK_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
  "$jdk/bin/jlink" --add-modules java.base,java.logging,jdk.unsupported \
    --strip-debug --no-header-files --no-man-pages --compress=2 --output .jre
fi
du -sh .gpu .jre
