#!/usr/bin/env bash
# Run here (not on the device), once: fill .gpucarry/ (git-ignored) with what the device needs and lacks:
# llama.cpp's source slimmed to what a CUDA build of libllama reads (about 14 MB), llama-cpp-python's Python
# package, and the pure-Python wheels qcode's engine imports. Then: device run with carry [".gpucarry"] and
#   bash bench/gpu/run_device.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
SDIST=${1:-/work/src/llama_cpp_python-0.3.36.tar.gz}
CARRY=.gpucarry
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxs '/.gpucarry/' "$exclude" || echo '/.gpucarry/' >> "$exclude"
rm -rf "$CARRY"
mkdir -p "$CARRY/py" "$CARRY/whl" "$CARRY/llama.cpp/ggml/src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$SDIST" -C "$tmp"
src=$(echo "$tmp"/llama_cpp_python-*)
cp -r "$src/llama_cpp" "$CARRY/py/"
rm -rf "$CARRY/py/llama_cpp/server" "$CARRY/py/llama_cpp/lib"
vendor="$src/vendor/llama.cpp"
for part in CMakeLists.txt LICENSE cmake include licenses src vendor; do cp -r "$vendor/$part" "$CARRY/llama.cpp/"; done
for part in CMakeLists.txt cmake include; do cp -r "$vendor/ggml/$part" "$CARRY/llama.cpp/ggml/"; done
# ggml's core files and the two backends built there (CPU, CUDA); ggml-et is referenced by the core CMake list
find "$vendor/ggml/src" -maxdepth 1 -type f -exec cp {} "$CARRY/llama.cpp/ggml/src/" \;
for backend in ggml-cpu ggml-cuda ggml-et; do cp -r "$vendor/ggml/src/$backend" "$CARRY/llama.cpp/ggml/src/"; done
# llama-server (issue 16): common/, the tools (configured together), the Web UI's CMake part only (no npm there:
# the server embeds an empty asset table)
cp -r "$vendor/common" "$CARRY/llama.cpp/"
mkdir -p "$CARRY/llama.cpp/tools/ui" "$CARRY/llama.cpp/scripts"
for tool in "$vendor"/tools/*; do [ "$(basename "$tool")" = ui ] || cp -r "$tool" "$CARRY/llama.cpp/tools/"; done
cp "$vendor"/tools/ui/{CMakeLists.txt,ui.cpp.in,ui.h.in,sources.cmake} "$CARRY/llama.cpp/tools/ui/"
cp "$vendor"/tools/CMakeLists.txt "$CARRY/llama.cpp/tools/CMakeLists.txt"
cp "$vendor/scripts/ui-assets.cmake" "$CARRY/llama.cpp/scripts/"
# the device's python3 (3.12) has numpy and jinja2 but not these (KINDS.md); versions as in this venv
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$CARRY/whl" pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 python-dotenv==1.2.4 \
  typing-inspection==0.4.5 annotated-types==0.8.0 typing_extensions==4.16.0 platformdirs==4.14.8 diskcache==5.6.3
du -sh "$CARRY" "$CARRY"/*
