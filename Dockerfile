# kiln serve's container image: the command line built from this checkout, on a Java 17 runtime.
# Not built or run where it was written (no Docker daemon or registry there): docs/deploy.md says
# what is and is not checked.
#
# CPU only (the default):
#   docker build -t kiln:cpu .
# With the CUDA backend (the kernels compiled by nvcc for sm_80 and sm_90a; CUDA 13.1, the
# version of the JavaCPP cuda presets the build uses):
#   docker build -t kiln:cuda --build-arg BUILD_IMAGE=nvidia/cuda:13.1.0-devel-ubuntu24.04 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:13.1.0-runtime-ubuntu24.04 --build-arg KILN_CUDA=ON .
# Run:
#   docker run -p 8000:8000 -v hf-cache:/var/cache/huggingface kiln:cpu \
#     serve --model Qwen/Qwen2.5-0.5B-Instruct --host 0.0.0.0 --port 8000
ARG BUILD_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
# The README's build: JDK 17, Maven, CMake and g++ (the native CPU backend).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       openjdk-17-jdk-headless maven cmake g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# OFF: no CUDA kernels; ON: nvcc must be found (the devel image has it).
ARG KILN_CUDA=OFF
RUN mvn -B -q package -DskipTests -Dkiln.cuda=${KILN_CUDA}

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
# bin/kiln finds the jars from its own place, in ../target/kiln-cli: the command line's jar and
# lib/ (the other modules, the natives' platform jars, the libraries).
COPY --from=build /src/bin/kiln /opt/kiln/bin/kiln
COPY --from=build /src/target/kiln-cli/kiln-cli-*.jar /opt/kiln/target/kiln-cli/
COPY --from=build /src/target/kiln-cli/lib /opt/kiln/target/kiln-cli/lib
# NOTE: on PATH rather than linked into it: bin/kiln locates its jars from its own path.
ENV PATH=/opt/kiln/bin:$PATH \
    HF_HOME=/var/cache/huggingface \
    LD_LIBRARY_PATH=/usr/local/cuda/lib64
# NOTE: runs as root, so that a model-cache volume the platform mounts root-owned (deploy/'s
# PersistentVolumeClaim) is writable; to run as another user, give the pod a securityContext
# (runAsUser, fsGroup) that owns the volume.
RUN mkdir -p /var/cache/huggingface
EXPOSE 8000
ENTRYPOINT ["kiln"]
CMD ["serve", "--help"]
