#!/usr/bin/env bash
# GPU correctness pass, run on the GPU machine from the carried bundle (scripts/cuda_bundle.sh):
# backend-ops parity (every CUDA op vs the CPU reference), every golden case on the CUDA backend,
# and compute-sanitizer memcheck over the parity test. Results go to $OUT (or ./gpu-out).
# Usage: tests/parity/run_gpu.sh [BUNDLE_DIR]   (default .cudarun)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${1:-.cudarun}
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$BUNDLE/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN="$PWD/$BUNDLE/bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
status=0
echo "== backend-ops parity"
"$BIN/tv_parity_test" 2>&1 | tee "$OUT/parity.txt" || status=1
echo "== golden cases on cuda"
for c in tests/data/golden/*/; do
  "$BIN/turbovid-engine" golden --backend cuda "$c" > "$OUT/golden.log" 2>&1
  grep -E "PASS|FAIL" "$OUT/golden.log" | tail -1 || echo "$(basename "$c") FAIL: $(tail -1 "$OUT/golden.log")"
done | tee "$OUT/golden-cuda.txt"
grep -q FAIL "$OUT/golden-cuda.txt" && status=1
if [ "${MEMCHECK:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (parity test)"
  compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/tv_parity_test" \
    --gtest_filter='*CudaMatchesCpu*' >"$OUT/memcheck.txt" 2>&1 || status=1
  tail -3 "$OUT/memcheck.txt"
fi
exit $status
