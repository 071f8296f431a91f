#!/usr/bin/env bash
# Every GPU check of the repository in one device command (repository root, `.debs` of
# `scripts/gpu_debs.sh --service` carried), each part under its own timeout, the whole inside the
# device tool's 10 minutes. Results are packed into $OUT/results.tar.gz (the tool brings back at
# most 8 files) with a summary in $OUT/summary.txt.
#   build    scripts/build_bare.sh --service for sm_90a and sm_120a (TV_BARE_ARCHS to change)
#   parity   tv_parity_test: every CUDA op against the CPU reference (SageSLA, W8A8 included)
#   golden   every golden case on the CUDA backend
#   sass     scripts/check_sass.sh: int8 / FP8 tensor-core instructions per arch
#   ckpt     the random-weight Wan2.1-T2V-1.3B checkpoint (real sizes) under /tmp/turbovid-gpu, as
#            tests/gpu/run.sh makes it (the sagesla, nccl and bench parts use it)
#   service  tests/gpu/run.sh tests bench (scheduler + CUDA workers, overhead)
#   sagesla  tests/gpu/sagesla.sh (SageSLA parity, golden, op timings, 1.3B DiT and e2e)
#   residual tests/gpu/residual.sh (DiT residual stream fp32 vs bf16: golden and 1.3B timings)
#   nccl     tests/gpu/nccl_one_rank.sh (golden through a one-rank NCCL group, its overhead)
#   portable parity and golden again with TV_KERNELS=portable (the RTX 5090's code paths)
#   perf     the DISABLED_ perf tests of tv_parity_test (SLA, SageSLA, int8 / FP8 GEMMs, conv;
#            TV_PERF_FILTER narrows the gtest filter)
#   h100:P   bench/h100.sh part P (linears, 14b-quant, a14b, 5090-emu, ...) on this build, with the
#            checkpoints beside the service part's (one umT5 copy on the 64 GB disk)
# Usage: tests/gpu/all.sh [PART...]   (default: all of them, in this order)
set -uo pipefail
cd "$(dirname "$0")/../.."
FINAL=${OUT:-gpu-out}
mkdir -p "$FINAL"
FINAL=$(realpath "$FINAL")
export OUT=/tmp/turbovid-all-out
rm -rf "$OUT"
mkdir -p "$OUT"
BUILD=${TV_GPU_BUILD:-build-bare}
export TV_BARE_ARCHS=${TV_BARE_ARCHS:-90a;120a}
SUMMARY=$FINAL/summary.txt
: >"$SUMMARY"
note() { echo "== [$(printf '%4d' "$SECONDS")s] $*" | tee -a "$SUMMARY"; }
pack() { tar -C "$OUT" --exclude='*.mp4' -czf "$FINAL/results.tar.gz" . 2>/dev/null; }
trap pack EXIT

# part NAME LIMIT CMD...: runs CMD with its output in $OUT/NAME.log, notes the exit status.
part() {
  local name=$1 limit=$2
  shift 2
  note "$name (timeout ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  note "$name exited $rc"
  tail -25 "$OUT/$name.log" | sed 's/^/    /' >>"$SUMMARY"
  pack  # after every part: a call cut off at its limit still brings back what ran
  return $rc
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(build parity golden sass service sagesla nccl portable)
note "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
# Every golden case on the CUDA backend (a script of its own so that `timeout` can run it).
cat >"$OUT/golden_all.sh" <<'SH'
rc=0
for c in tests/data/golden/*/; do
  "$1/engine/turbovid-engine" golden --backend cuda "$c" >"$2/golden-one.log" 2>&1 || rc=1
  echo "$(basename "$c"): $(grep -E 'PASS|FAIL' "$2/golden-one.log" | tail -1 || tail -1 "$2/golden-one.log")"
done
exit $rc
SH
for p in "${parts[@]}"; do
  case "$p" in
    build) part build 300 scripts/build_bare.sh --service "$BUILD" || { note "no build: stop"; exit 1; } ;;
    parity) part parity 240 "$BUILD/tests/parity/tv_parity_test" ;;
    golden) part golden 180 bash "$OUT/golden_all.sh" "$BUILD" "$OUT" ;;
    sass) part sass 60 scripts/check_sass.sh "$BUILD" ;;
    ckpt) part ckpt 200 "$BUILD/engine/turbovid-engine" bench --model wan2.1-t2v-1.3b --random-weights \
      --prepare-only --work-dir /tmp/turbovid-gpu --stages text,dit,vae,mp4 &&
      touch /tmp/turbovid-gpu/wan2.1-t2v-1.3b/.complete ;;
    service) part service 300 env TV_GPU_SKIP_BUILD=1 tests/gpu/run.sh tests bench ;;
    sagesla) part sagesla 300 tests/gpu/sagesla.sh "$BUILD" ;;
    residual) part residual 420 tests/gpu/residual.sh "$BUILD" ;;
    nccl) part nccl 300 tests/gpu/nccl_one_rank.sh "$BUILD" ;;
    portable-golden) part portable-golden 180 env TV_KERNELS=portable bash "$OUT/golden_all.sh" "$BUILD" "$OUT" ;;
    portable)
      part portable-parity 240 env TV_KERNELS=portable "$BUILD/tests/parity/tv_parity_test"
      part portable-golden 180 env TV_KERNELS=portable bash "$OUT/golden_all.sh" "$BUILD" "$OUT" ;;
    perf) part perf 300 "$BUILD/tests/parity/tv_parity_test" --gtest_also_run_disabled_tests \
      --gtest_filter="${TV_PERF_FILTER:-*Perf*}" ;;
    h100:*)
      printf '#!/bin/sh\nb=$1; shift\nexec "$(find %s -name "$b" -type f -perm -u+x | head -1)" "$@"\n' \
        "$(realpath "$BUILD")" >"$OUT/run"
      chmod +x "$OUT/run"
      part "h100-${p#h100:}" 570 env TV_BENCH_RUN="$OUT/run" TV_BENCH_WORK=/tmp/turbovid-gpu \
        TV_BENCH_CLEAN=1 TV_BENCH_BUDGET=${TV_BENCH_BUDGET:-560} OUT="$OUT/h100" bench/h100.sh "${p#h100:}" ;;
    *) note "unknown part $p" ;;
  esac
done
note "done"
