#!/usr/bin/env bash
# Build llama.cpp's own server from the llama.cpp vendored in llama-cpp-python's source, with the CPU
# flags llama-cpp-python's wheel build uses (GGML_NATIVE, OpenMP, llamafile sgemm and CPU repack on,
# Release, shared libraries), so that bench/peer.py compares like with like. Not a runtime dependency.
#
#   bench/build_llama_server.sh [SRC_DIR] [BUILD_DIR]
#   SRC_DIR:   unpacked llama_cpp_python-0.3.36 (pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36)
#   BUILD_DIR: where the build goes (outside the repository); the server is BUILD_DIR/bin/llama-server
set -euo pipefail
src=${1:-/work/src/llama_cpp_python-0.3.36}
build=${2:-/work/src/llama-server-build}
jobs=${JOBS:-2}
cmake -S "$src/vendor/llama.cpp" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON \
    -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON -DGGML_CPU_REPACK=ON \
    -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON
nice -n 10 cmake --build "$build" --target llama-server -j "$jobs"
"$build/bin/llama-server" --version
