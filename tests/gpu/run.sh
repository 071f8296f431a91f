#!/usr/bin/env bash
# The GPU test of the whole service, in one command on the GPU machine (repository root, with the
# .debs/ of `scripts/gpu_debs.sh --service` carried):
#   1. scripts/build_bare.sh --service: scheduler, CUDA worker, CLI, engine, Python stubs; Debian's
#      Python 3.11 with grpcio and Prometheus from the carried packages (no FFmpeg anywhere);
#   2. checkpoints: the random-weight Wan2.1-T2V-1.3B set at its real sizes and the tiny
#      two-expert I2V checkpoint, under $TV_GPU_WORK;
#   3. tests/gpu/test_service_gpu.py (T2V through the Python client and the CLI, warm workers, I2V,
#      cancel, /metrics + promtool + Prometheus, kill -9 of a worker);
#   4. bench/service_overhead.py: client-observed time against Pipeline::Generate alone.
# Results land in $OUT (default gpu-out): build.log, tests.log, service-gpu.json, overhead.json,
# worker-metrics.txt, an MP4. Exit status: 0 when every part passed.
# Usage: tests/gpu/run.sh [tests|bench]...   (default: both)
# Environment: TV_GPU_SKIP_BUILD=1 (use BUILD as it is), TV_GPU_BUILD (build-bare), TV_GPU_WORK (/tmp/turbovid-gpu), TV_GPU_REPEAT (3).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-out}
BUILD=${TV_GPU_BUILD:-build-bare}
WORK=${TV_GPU_WORK:-/tmp/turbovid-gpu}
REPEAT=${TV_GPU_REPEAT:-3}
mkdir -p "$OUT" "$WORK"
OUT=$(realpath "$OUT")
status=0
log() { echo "== [$(printf '%4d' "$SECONDS")s] $*" | tee -a "$OUT/run.log"; }

log "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
log "build (scripts/build_bare.sh --service $BUILD)"
if [ "${TV_GPU_SKIP_BUILD:-0}" = 1 ] && [ -x "$BUILD/scheduler/turbovid-scheduler" ]; then
  echo "built already (TV_GPU_SKIP_BUILD=1)" >"$OUT/build.log"
elif ! scripts/build_bare.sh --service "$BUILD" >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  log "build failed"
  exit 1
fi
tail -1 "$OUT/build.log"
export PATH="$(realpath "$BUILD")/bin:$PATH"  # python3 (Debian 3.11 + grpcio), prometheus, spm_train
export TV_BUILD_DIR=$(realpath "$BUILD") TV_GPU_WORK=$WORK TV_GPU_OUT=$OUT
case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)" in
  *H200*) export TV_GPU_NODE_CLASS=h200 ;;
  *) export TV_GPU_NODE_CLASS=h100 ;;
esac
ENGINE=$BUILD/engine/turbovid-engine

log "checkpoints in $WORK"
if [ ! -f "$WORK/wan2.1-t2v-1.3b/.complete" ]; then
  "$ENGINE" bench --model wan2.1-t2v-1.3b --random-weights --prepare-only --work-dir "$WORK" \
    --stages text,dit,vae,mp4 >>"$OUT/run.log" 2>&1 && touch "$WORK/wan2.1-t2v-1.3b/.complete" ||
    { log "1.3B checkpoint failed"; exit 1; }
fi
[ -f "$WORK/tiny-i2v/.complete" ] || { "$ENGINE" make-tiny-checkpoint --kind i2v-moe \
  --out "$WORK/tiny-i2v" >>"$OUT/run.log" 2>&1 && touch "$WORK/tiny-i2v/.complete"; } ||
  { log "tiny I2V checkpoint failed"; exit 1; }
du -sh "$WORK"/* | tee -a "$OUT/run.log"

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(tests bench)
for part in "${parts[@]}"; do
  case "$part" in
    tests)
      log "tests/gpu/test_service_gpu.py"
      timeout --kill-after=10 420 python3 tests/gpu/test_service_gpu.py 2>&1 | tee "$OUT/tests.log"
      rc=${PIPESTATUS[0]}
      log "tests exited $rc"
      [ "$rc" -eq 0 ] || status=1 ;;
    bench)
      log "bench/service_overhead.py (repeat $REPEAT)"
      timeout --kill-after=10 300 python3 bench/service_overhead.py --build-dir "$BUILD" \
        --model-dir "$WORK/wan2.1-t2v-1.3b" --repeat "$REPEAT" --json "$OUT/overhead.json" \
        2>&1 | tee "$OUT/overhead.log"
      rc=${PIPESTATUS[0]}
      log "bench exited $rc"
      [ "$rc" -eq 0 ] || status=1 ;;
    *) log "unknown part '$part' (tests, bench)"; status=2 ;;
  esac
done
log "done, status $status"
exit $status
