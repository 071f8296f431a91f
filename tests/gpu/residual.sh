#!/usr/bin/env bash
# The DiT's residual stream in fp32 (default) against bf16 (TV_DIT_RESIDUAL=bf16) on the GPU
# machine, after scripts/build_bare.sh (same BUILD): every DiT-bearing golden case on the CUDA
# backend under both settings (their rel. L2 against the upstream reference side by side), and
# the random-weight 1.3B DiT's 480p forward (dense and SLA) timed under both. Results in $OUT: residual-golden.txt, residual-bench-*.txt.
# Usage: tests/gpu/residual.sh [BUILD]   (default build-bare)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bare}
OUT=${OUT:-gpu-out}
WORK=${TV_GPU_WORK:-/tmp/turbovid-gpu}
mkdir -p "$OUT"
status=0
echo "== golden cases with a DiT, residual stream f32 vs bf16 (CUDA backend)"
for c in tests/data/golden/{dit_t2v,dit_i2v,dit_sla_t2v,sagesla,sagesla_sm89,rcm_t2v,rcm_i2v_moe,pipeline_t2v}/; do
  [ -d "$c" ] || continue
  line="$(basename "$c"):"
  for r in f32 bf16; do
    TV_DIT_RESIDUAL=$r timeout 60 "$BUILD/engine/turbovid-engine" golden --backend cuda "$c" \
      >"$OUT/golden-one.log" 2>&1 || { [ $r = f32 ] && status=1; }
    cat "$OUT/golden-one.log" >>"$OUT/residual-golden.txt"
    line="$line  [$r] $(grep -E 'PASS|FAIL' "$OUT/golden-one.log" | tail -1 | cut -c1-150)"
  done
  echo "$line"
done
# The random-weight 1.3B DiT (only the DiT: the bench's dit stage needs nothing else).
timeout 120 "$BUILD/engine/turbovid-engine" bench --model wan2.1-t2v-1.3b --random-weights \
  --prepare-only --work-dir "$WORK" --stages dit >"$OUT/residual-ckpt.txt" 2>&1 || status=1
for r in bf16 f32; do
  echo "== 1.3B 480p DiT forward (81 frames), residual $r"
  TV_DIT_RESIDUAL=$r timeout 150 "$BUILD/engine/turbovid-engine" bench --model wan2.1-t2v-1.3b \
    --random-weights --work-dir "$WORK" --backend cuda --resolution 480p --frames 81 --steps 4 \
    --attention dense,sla --stages dit --repeat 3 >"$OUT/residual-bench-$r.txt" 2>&1 || status=1
  grep -E "dit_forward|dit_sample_total|peak" "$OUT/residual-bench-$r.txt"
done
exit $status
