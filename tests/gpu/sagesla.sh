#!/usr/bin/env bash
# SageSLA on the GPU machine, after scripts/build_bare.sh (same BUILD): the CUDA op against the CPU
# reference (tv_parity_test SageSlaParity), both golden cases on the CUDA backend (exact int8 and
# e4m3 codes against upstream), the op's timings at the model shapes beside bf16 SLA, and, when
# the random-weight 1.3B checkpoint of tests/gpu/run.sh exists, the DiT and prompt → MP4 with
# sla / sagesla / sagesla_sm89. Results in $OUT: sage-parity.txt, sage-golden.txt, sage-bench.txt.
# Usage: tests/gpu/sagesla.sh [BUILD]   (default build-bare)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bare}
OUT=${OUT:-gpu-out}
WORK=${TV_GPU_WORK:-/tmp/turbovid-gpu}
mkdir -p "$OUT"
status=0
echo "== SageSLA parity (CUDA vs CPU) and op timings"
timeout 180 "$BUILD/tests/parity/tv_parity_test" --gtest_also_run_disabled_tests \
  --gtest_filter='SageSla*' >"$OUT/sage-parity.txt" 2>&1 || status=1
grep -E "sagesla|sla \(bf16\)|OK|FAILED|Failure" "$OUT/sage-parity.txt" | head -40
echo "== tensor-core instructions in the SASS (scripts/check_sass.sh)"
scripts/check_sass.sh "$BUILD" >"$OUT/sass.txt" 2>&1 || status=1
grep -E "quant|sagesla|MISSING|check_sass" "$OUT/sass.txt"
echo "== golden SageSLA cases on cuda"
for c in tests/data/golden/sagesla*/; do
  timeout 60 "$BUILD/engine/turbovid-engine" golden --backend cuda "$c" >"$OUT/golden-one.log" 2>&1
  rc=$?
  cat "$OUT/golden-one.log" >>"$OUT/sage-golden.txt"
  [ $rc -eq 0 ] || status=1
  echo "$(basename "$c"): rc $rc, $(grep -E 'PASS|FAIL' "$OUT/golden-one.log" | tail -1)"
done
if [ -d "$WORK/wan2.1-t2v-1.3b" ]; then
  echo "== 1.3B 480p DiT and prompt → MP4: sla, sagesla, sagesla_sm89"
  timeout 240 "$BUILD/engine/turbovid-engine" bench --model-dir "$WORK/wan2.1-t2v-1.3b" \
    --backend cuda --resolution 480p --attention sla,sagesla,sagesla_sm89 --stages dit,e2e \
    --repeat 3 --work-dir "$WORK/bench" >"$OUT/sage-bench.txt" 2>&1 || status=1
  grep -E "dit_sample_total|generate_e2e|peak" "$OUT/sage-bench.txt"
fi
exit $status
