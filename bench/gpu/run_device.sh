#!/usr/bin/env bash
# Issues 6 and 16, the device side in one command. Here, first: bash bench/gpu/prepare.sh (fills the git-ignored
# .gpucarry/). Then on the lent GPU, with carry [".gpucarry"]:   bash bench/gpu/run_device.sh [phases]
#
# 1. builds libllama and llama-server with CUDA for sm_90 from the carried llama.cpp source (in the background,
#    ~5 min; skipped where .gpucarry/prebuilt/ holds a build an earlier run brought back), while it
# 2. installs the carried wheels and qcode (--no-deps), measures the copy bandwidth (the GPU is idle meanwhile)
#    and writes the Qwen3.6-27B-shaped model with controlled acceptance (bench/gpu/synth27b.py --controlled), then
# 3. runs the phases asked for (default: duel,profile,bench), each with a deadline inside the device's limit:
#    duel     bench/gpu/mtp_duel.py: llama-server draft-mtp against qcode's mtp and auto at each acceptance
#    profile  bench/gpu/profile_step.py: where a verify call and a head step spend their time (ncu, if present)
#    bench    bench/gpu/gpu_bench.py with QCODE_GPU_BENCH_ARGS (default: drafting-off decode vs the bare loop, and
#             the auto replays on the recorded edits)
# What comes back lands in $OUT (./gpu-out without one): at most 8 files, so logs travel as one tarball, and a new
# build as prebuilt.tar.xz.* parts (QCODE_GPU_SEND_BUILD=0 to skip).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
LIMIT=${QCODE_GPU_LIMIT:-580}  # seconds this whole command may take
START=$(date +%s)
PHASES=${1:-duel,profile,bench}
# for a dry run on a machine without a GPU: QCODE_GPU_CUDA=OFF QCODE_GPU_MODEL_ARGS="--small" ... run_device.sh
# QCODE_GPU_BANDWIDTH=0 skips the copy-bandwidth measurement (13 s) where it is known already
CUDA=${QCODE_GPU_CUDA:-ON} JOBS=${QCODE_GPU_JOBS:-16} MODEL_ARGS=${QCODE_GPU_MODEL_ARGS:-}
RATES=${QCODE_GPU_RATES:-1,0.8,0.6,0.4}
WORK=${QCODE_GPU_WORK:-/tmp/qcode-gpu}
BUILD=$WORK/build PY=$WORK/py SITE=$WORK/site MODEL=$WORK/qwen36-27b-controlled.gguf LOGS=$WORK/logs
SERVER=$BUILD/bin/llama-server
mkdir -p "$OUT" "$WORK" "$LOGS"
export PYTHONUNBUFFERED=1
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( LIMIT - $(elapsed) )); }
say() { echo "[run_device $(elapsed)s] $*"; }
finish() {
  cp "$WORK"/*.json "$LOGS"/ 2>/dev/null
  tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs 2>/dev/null
  say "finished with status $1"
  exit "$1"
}

{ nvidia-smi; nvcc --version | tail -2; python3 --version; nproc; free -g; df -h /tmp; command -v ncu; } \
  > "$LOGS/env.txt" 2>&1
grep -E "H100|H200|Driver" "$LOGS/env.txt" | head -2

build_pid="" prebuilt=0
if [ ! -x "$SERVER" ] && ls .gpucarry/prebuilt/prebuilt.tar.xz.* > /dev/null 2>&1; then
  mkdir -p "$BUILD/bin" && cat .gpucarry/prebuilt/prebuilt.tar.xz.* | tar -xJ -C "$BUILD/bin" \
    && LD_LIBRARY_PATH=$BUILD/bin "$SERVER" --version > "$LOGS/prebuilt.txt" 2>&1 \
    && prebuilt=1 && say "using the carried build: $(grep -m1 version "$LOGS/prebuilt.txt")"
  [ "$prebuilt" = 1 ] || { say "the carried build does not run here: building"; rm -rf "$BUILD"; }
fi
if [ ! -x "$SERVER" ]; then
  ( cmake -S .gpucarry/llama.cpp -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA="$CUDA" \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_HTML=OFF \
      -DLLAMA_CURL=OFF -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$BUILD/bin" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$BUILD/bin" \
    && cmake --build "$BUILD" -j"$JOBS" --target llama llama-server ) > "$LOGS/build.log" 2>&1 &
  build_pid=$!
  say "building libllama and llama-server (CUDA $CUDA, sm_90) in the background"
fi

if [ "${QCODE_GPU_WHEELS:-1}" = 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    .gpucarry/whl/*.whl || { say "wheel install failed"; finish 1; }
fi
mkdir -p "$PY" && cp -r .gpucarry/py/llama_cpp "$PY/"
export PYTHONPATH=$ROOT:$SITE:$PY

if [ "$CUDA" = ON ] && [ "${QCODE_GPU_BANDWIDTH:-1}" = 1 ]; then
  [ -f "$WORK/bandwidth.json" ] || python3 -m bench.gpu.bandwidth > "$WORK/bandwidth.json"
else
  echo '{"gb_s": null, "device": "none"}' > "$WORK/bandwidth.json"
fi
say "copy bandwidth: $(cat "$WORK/bandwidth.json")"
if [ ! -f "$MODEL" ] || [ ! -f "$WORK/model.json" ]; then
  python3 -m bench.gpu.synth27b "$MODEL" --controlled "$RATES" $MODEL_ARGS > "$WORK/model.json" \
    || { say "model generation failed"; finish 1; }
fi
say "model: $(cut -c1-160 "$WORK/model.json")"

if [ -n "$build_pid" ]; then
  if ! wait "$build_pid"; then
    say "build failed"; grep -m5 -B2 -A10 -i "error" "$LOGS/build.log"; tail -20 "$LOGS/build.log"; finish 1
  fi
  say "build finished"
  if [ "${QCODE_GPU_SEND_BUILD:-1}" = 1 ]; then  # the next run can skip the build: carry these back
    ( cd "$BUILD/bin" && tar -cf - lib*.so* llama-server | xz -T0 -6 | split -b 15M -d -a 1 - "$OUT/prebuilt.tar.xz." )
    parts=$(ls "$OUT"/prebuilt.tar.xz.* | wc -l)
    say "build packed: $(du -ch "$OUT"/prebuilt.tar.xz.* | tail -1 | cut -f1) in $parts parts"
    [ "$parts" -le 4 ] || { say "too large to send back"; rm -f "$OUT"/prebuilt.tar.xz.*; }
  fi
fi
mkdir -p "$PY/llama_cpp/lib"
cp -a "$BUILD"/bin/lib*.so* "$PY/llama_cpp/lib/"
export LD_LIBRARY_PATH=$BUILD/bin:${LD_LIBRARY_PATH:-}
python3 -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__, 'gpu offload',
  llama_cpp.llama_supports_gpu_offload())" || finish 1

status=0
run_phase() {  # name, seconds it must leave for later phases, command...
  local name=$1 reserve=$2; shift 2
  local budget=$(( $(left) - reserve - 10 ))
  if [ "$budget" -lt 40 ]; then say "skipping $name: $(left) s left"; return; fi
  say "$name with $budget s"
  timeout --signal=INT "$budget" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.log" || { status=$?; say "$name: status $status"; }
  tail -8 "$LOGS/$name.out"
}
case ",$PHASES," in *,duel,*)
  run_phase duel "$([[ $PHASES == *profile* ]] && echo 110 || echo 0)" python3 -m bench.gpu.mtp_duel \
    --model "$MODEL" --model-info "$WORK/model.json" --server "$SERVER" --out "$OUT/duel.json" --log-dir "$LOGS" \
    --deadline $(( $(left) - 130 )) ${QCODE_GPU_DUEL_ARGS:-} ;;
esac
case ",$PHASES," in *,profile,*)
  run_phase profile "$([[ $PHASES == *bench* ]] && echo 60 || echo 0)" python3 -m bench.gpu.profile_step \
    --model "$MODEL" --out "$OUT/profile.json" ${QCODE_GPU_PROFILE_ARGS:-} ;;
esac
# default: drafting-off decode against the bare loop, and the shipped mtp / auto plans replayed on the recorded edits
BENCH_ARGS=(--kv q8_0 --answers recorded --mtp-answers recorded --kinds edit --mtp-rates "" --mtp-cases 5
            --mtp-shipped-rates 0.8 --skip "kv,replay_ideal,decode_with_head,costs,cost_curve_with_head")
[ -n "${QCODE_GPU_BENCH_ARGS:-}" ] && eval "BENCH_ARGS=($QCODE_GPU_BENCH_ARGS)"
# QCODE_GPU_BENCH_SLOTS="17 ...": the bench again with each rollback_slots setting (the engine's choice against it)
case ",$PHASES," in *,bench,*)
  set -- ${QCODE_GPU_BENCH_SLOTS:-}
  run_phase bench $(( 90 * $# )) python3 -m bench.gpu.gpu_bench --model "$MODEL" --model-info "$WORK/model.json" \
    --out "$OUT/results.json" --bandwidth-json "$WORK/bandwidth.json" --deadline $(( $(left) - 20 - 90 * $# )) \
    "${BENCH_ARGS[@]}"
  for slots in "$@"; do
    shift
    run_phase "bench-slots$slots" $(( 90 * $# )) env QCODE_ROLLBACK_SLOTS="$slots" python3 -m bench.gpu.gpu_bench \
      --model "$MODEL" --model-info "$WORK/model.json" --out "$OUT/results-slots$slots.json" \
      --bandwidth-json "$WORK/bandwidth.json" --deadline $(( $(left) - 20 - 90 * $# )) "${BENCH_ARGS[@]}"
  done ;;
esac
finish $status
