#!/usr/bin/env bash
# Kernel A/B on the GPU machine, in one device call: builds this tree and an older source tree
# (scripts/build_bare.sh, carried .debs/), times the fast kernels of both in the same run (sm90
# attention variants, conv3d, the SLA op at model shapes), then runs the backend-ops parity test and
# every golden case on the CUDA backend of this tree. Results in $OUT (kbench-{before,after}.txt,
# parity.txt, golden.txt). Never asserts on speed.
# Usage: bench/kernel_ab.sh BEFORE_SRC   e.g. BEFORE_SRC made here with
#   mkdir -p .gpu/before && git archive REV | tar -x -C .gpu/before --exclude=tests/data
#   (then carry .debs and .gpu in the device call)
set -uo pipefail
cd "$(dirname "$0")/.."
BEFORE_SRC=${1:?usage: bench/kernel_ab.sh BEFORE_SRC}
OUT=${OUT:-kernel-ab-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
export TV_NVCC_JOBS=${TV_NVCC_JOBS:-16}
scripts/build_bare.sh build-bare >"$OUT/build.txt" 2>&1 || { tail -60 "$OUT/build.txt"; exit 1; }
TV_DEBS=$PWD/.debs "$BEFORE_SRC/scripts/build_bare.sh" /tmp/build-before >"$OUT/build-before.txt" 2>&1 ||
  { tail -30 "$OUT/build-before.txt"; exit 1; }
find_bin() { find "$1" -name "$2" -type f | head -1; }
for side in before after; do
  dir=build-bare
  [ "$side" = before ] && dir=/tmp/build-before
  kb=$(find_bin "$dir" turbovid-kernel-bench)
  pt=$(find_bin "$dir" tv_parity_test)
  {
    echo "== attention sm90 variants"; "$kb" --path sm90 --check --iters 10
    echo "== conv3d"; "$kb" --op conv3d --check
    echo "== SLA op"; "$pt" --gtest_also_run_disabled_tests --gtest_filter='SlaPerf.*'
  } >"$OUT/kbench-$side.txt" 2>&1
done
echo "== parity"
"$(find_bin build-bare tv_parity_test)" >"$OUT/parity.txt" 2>&1; status=$?
grep -E '^\[  (PASSED|FAILED)' "$OUT/parity.txt"
echo "== golden cases on cuda"
engine=$(find_bin build-bare turbovid-engine)
for c in tests/data/golden/*/; do
  "$engine" golden --backend cuda "$c" 2>&1 | grep -E 'PASS|FAIL' | tail -1
done | tee "$OUT/golden.txt"
for side in before after; do
  echo "== $side"
  grep -E '^(self|cross|[0-9]+@|up |sla \[)' "$OUT/kbench-$side.txt"
done
exit $status
