#!/usr/bin/env bash
# Issue 6's device side in one command. Here, first: bash bench/gpu/prepare.sh (fills the git-ignored .gpucarry/).
# Then on the lent GPU, with carry [".gpucarry"]:   bash bench/gpu/run_device.sh [gpu_bench options]
#
# 1. builds libllama with CUDA for sm_90 from the carried llama.cpp source (in the background, ~4-5 min), while it
# 2. installs the carried wheels and qcode (--no-deps), measures the copy bandwidth (the GPU is idle meanwhile)
#    and writes the Qwen3.6-27B-shaped model (bench/gpu/synth27b.py, ~15.7 GB), then
# 3. runs bench/gpu/gpu_bench.py against the model with a deadline that ends the run inside the device's limit.
# What comes back lands in $OUT (./gpu-out without one). A second run on a still-warm machine reuses build and model.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
LIMIT=${QCODE_GPU_LIMIT:-580}  # seconds this whole command may take
START=$(date +%s)
# for a dry run on a machine without a GPU: QCODE_GPU_CUDA=OFF QCODE_GPU_MODEL_ARGS=--small ... run_device.sh --quick
# QCODE_GPU_BANDWIDTH=0 skips the copy-bandwidth measurement (13 s) where it is known already
CUDA=${QCODE_GPU_CUDA:-ON} JOBS=${QCODE_GPU_JOBS:-16} MODEL_ARGS=${QCODE_GPU_MODEL_ARGS:-}
WORK=${QCODE_GPU_WORK:-/tmp/qcode-gpu}
BUILD=$WORK/build PY=$WORK/py SITE=$WORK/site MODEL=$WORK/qwen36-27b-shaped.gguf
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
elapsed() { echo $(( $(date +%s) - START )); }
say() { echo "[run_device $(elapsed)s] $*"; }

{ nvidia-smi; nvcc --version | tail -2; python3 --version; nproc; free -g; df -h /tmp; } > "$OUT/env.txt" 2>&1
head -20 "$OUT/env.txt" | grep -E "H100|H200|Driver|MiB" | head -3

build_pid=""
if [ ! -f "$PY/llama_cpp/lib/libllama.so" ]; then
  ( cmake -S .gpucarry/llama.cpp -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA="$CUDA" \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_BUILD_HTML=OFF -DLLAMA_CURL=OFF \
    && cmake --build "$BUILD" -j"$JOBS" --target llama ) > "$OUT/build.log" 2>&1 &
  build_pid=$!
  say "building libllama (CUDA, sm_90) in the background"
fi

if [ "${QCODE_GPU_WHEELS:-1}" = 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    .gpucarry/whl/*.whl || { say "wheel install failed"; exit 1; }
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target "$WORK/qcode" . \
  > "$WORK/qcode-install.log" 2>&1 && say "qcode installed (--no-deps) into $WORK/qcode" \
  || say "qcode install failed (running from the checkout anyway): $(tail -3 "$WORK/qcode-install.log")"
mkdir -p "$PY" && cp -r .gpucarry/py/llama_cpp "$PY/"
export PYTHONPATH=$ROOT:$SITE:$PY

if [ "$CUDA" = ON ] && [ "${QCODE_GPU_BANDWIDTH:-1}" = 1 ]; then
  [ -f "$WORK/bandwidth.json" ] || python3 -m bench.gpu.bandwidth > "$WORK/bandwidth.json"
else
  echo '{"gb_s": null, "device": "none"}' > "$WORK/bandwidth.json"
fi
say "copy bandwidth: $(cat "$WORK/bandwidth.json")"
if [ ! -f "$MODEL" ] || [ ! -f "$WORK/model.json" ]; then
  python3 -m bench.gpu.synth27b "$MODEL" $MODEL_ARGS > "$WORK/model.json" || { say "model generation failed"; exit 1; }
fi
cp "$WORK/model.json" "$OUT/model.json"
say "model: $(cut -c1-200 "$WORK/model.json")"

if [ -n "$build_pid" ]; then
  if ! wait "$build_pid"; then
    say "build failed"; grep -m5 -B2 -A10 -i "error" "$OUT/build.log"; tail -20 "$OUT/build.log"; exit 1
  fi
  say "build finished"
fi
mkdir -p "$PY/llama_cpp/lib"
find "$BUILD" -name 'lib*.so*' -exec cp -a {} "$PY/llama_cpp/lib/" \;
python3 -c "import llama_cpp, sys; print('llama_cpp', llama_cpp.__version__, 'gpu offload',
  llama_cpp.llama_supports_gpu_offload())" || exit 1

left=$(( LIMIT - $(elapsed) - 10 ))
say "benchmark with $left s left"
python3 -m bench.gpu.gpu_bench --model "$MODEL" --model-info "$WORK/model.json" --out "$OUT/results.json" \
  --bandwidth-json "$WORK/bandwidth.json" --deadline "$left" "$@" 2> "$OUT/bench.log"
status=$?
cp "$WORK/bandwidth.json" "$OUT/bandwidth.json"
grep -E "done in|failed|skipping|loaded" "$OUT/bench.log" | tail -30
say "finished with status $status"
exit $status
