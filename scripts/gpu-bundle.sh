#!/usr/bin/env bash
# Prepares what a run on a GPU machine without Java or Maven needs, kept small because it travels:
#   .gpu/classes       every module's main classes with the native libraries (CUDA kernels included)
#   .gpu/test-classes  test classes (test resources are read from test/resources in the tree)
#   .gpu/lib           the jars the GPU tests and benchmarks load, and the JUnit console launcher
#   .gpu/bin           kiln_op_tests and kiln_kernel_bench (for scripts/gpu_kernel_checks.sh: BIN=.gpu/bin)
#   .jre               a Java runtime (jlink of the local JDK)
#   .gpu-pack/kiln-gpu.tar.xz  both of the above in one compressed archive: with the tracked tree
#                              (about 31 MB, fixtures included) the bundle itself would not fit the
#                              64 MB that may travel, the archive (about 29 MB) does
# Then, on the GPU machine, from the repository root: scripts/gpu-unpack.sh && scripts/gpu-run-tests.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=$PWD/.gpu-build
rm -rf .gpu "$build/gpu-lib"
mkdir -p .gpu/lib
# Hopper only: the GPU machine is an H100/H200, and half the library's size keeps the bundle small.
# (copy-dependencies runs in the same reactor: Kiln's own modules are its classes folders, merged below.)
# (The LangChain4j and Spring AI modules stay out: nothing on the GPU machine runs them.)
modules="kiln-tokenizer kiln-core-native kiln-core kiln-cuda-native kiln-cuda kiln-server kiln-cli"
mvn -B -q test-compile dependency:copy-dependencies -Dkiln.cuda=ON -Dkiln.build.dir="$build" \
  "-Dkiln.cuda.gencode=-gencode=arch=compute_90a,code=sm_90a" \
  -pl "$(for m in $modules; do printf 'java/%s,' "$m"; done)" \
  -DincludeScope=test -DexcludeGroupIds=ai.kiln -DoutputDirectory="$build/gpu-lib"
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.11.4 \
  -DoutputDirectory=.gpu/lib
# The server (kiln serve) needs Jetty, the Prometheus client and SLF4J besides, and the command line Logback;
# the structured-output GPU test validates outputs with networknt's JSON-schema validator (and its
# date-time and YAML libraries).
for jar in javacpp cuda jackson-core jackson-databind jackson-annotations picocli jetty prometheus-metrics slf4j-api \
    slf4j-jdk-platform-logging logback-core logback-classic logstash-logback-encoder \
    json-schema-validator itu jackson-dataformat-yaml snakeyaml; do
  cp "$build"/gpu-lib/"$jar"-*.jar .gpu/lib/
done
# Of the CUDA presets' JNI libraries only the runtime's and cuBLAS's are loaded: keep those.
platform_jar=$(ls .gpu/lib/cuda-*-linux-x86_64.jar)
slim=$(mktemp -d)
(cd "$slim" && unzip -q "$OLDPWD/$platform_jar" && find org/bytedeco/cuda/linux-x86_64 -name '*.so*' \
   ! -name 'libjnicudart.so' ! -name 'libjnicublas.so' -delete && rm "$OLDPWD/$platform_jar" \
   && zip -q -r "$OLDPWD/$platform_jar" .)
rm -rf "$slim"
find .gpu -name '*.so*' -exec strip --strip-unneeded {} \;
# Every module's classes in one folder, and every module's test classes in another.
mkdir -p .gpu/classes .gpu/test-classes
for m in $modules; do
  cp -r "$build/$m"/classes/. .gpu/classes/
  [[ -d "$build/$m/test-classes/ai" ]] && cp -r "$build/$m"/test-classes/ai .gpu/test-classes/
done
rm -f .gpu/classes/ai/kiln/backend/cuda/linux-x86_64/*.o .gpu/classes/ai/kiln/backend/cpu/linux-x86_64/*.o
# The kernel harness and benchmark (their libraries are those in .gpu/classes).
mkdir -p .gpu/bin && cp "$build"/cmake-cuda/cuda-kernels/kiln_op_tests "$build"/cmake-cuda/cuda-kernels/kiln_kernel_bench .gpu/bin/
strip --strip-unneeded .gpu/bin/*
# java.net.http: the client of `kiln bench serve`; java.management and jdk.management: the JVM metrics
# of `kiln serve`; java.xml and java.naming: Logback; jdk.jfr: flight recordings of a server. Uncompressed (--compress=0): the archive below
# compresses it to 12 MB, where jlink's own zip left 20 MB that xz cannot shrink.
jlink_options="--add-modules java.base,java.logging,jdk.unsupported,java.net.http,java.management,jdk.management,java.xml,java.naming,jdk.jfr --strip-debug --no-header-files --no-man-pages --compress=0"
if [[ ! -x .jre/bin/java || $(cat .jre/kiln-jlink-options 2>/dev/null) != "$jlink_options" ]]; then
  rm -rf .jre
  jdk=${JDK_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
  # shellcheck disable=SC2086
  "$jdk/bin/jlink" $jlink_options --output .jre
  echo "$jlink_options" > .jre/kiln-jlink-options
fi
# NOTE: the runtime's libraries carry symbols worth 4 MB of the 64 MB that may travel.
find .jre -name '*.so' -exec strip --strip-unneeded {} +
du -sh .gpu .jre
# The Llama 3 vocabulary (scripts/fetch-test-vocabularies.sh), for benchmark models with a tokenizer,
# so that a serving benchmark pays for detokenizing as a served model does.
if [[ -f target/tokenizer-vocab/llama3/tokenizer.json ]]; then
  mkdir -p .gpu/vocab/llama3 && cp target/tokenizer-vocab/llama3/tokenizer*.json .gpu/vocab/llama3/
else
  echo "gpu-bundle: no target/tokenizer-vocab/llama3 (scripts/fetch-test-vocabularies.sh): benchmark models get no tokenizer" >&2
fi
rm -rf .gpu-pack && mkdir -p .gpu-pack
tar -cf - .gpu .jre | xz -T0 -6 > .gpu-pack/kiln-gpu.tar.xz
du -sh .gpu-pack
