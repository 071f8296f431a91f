#!/usr/bin/env bash
# NCCL on the one GPU lent (docs/parallelism.md §8), after scripts/build_bare.sh (same BUILD):
# every golden case on the CUDA backend through a one-rank NCCL group that runs every collective
# (against the upstream dumps, their own tolerances), then the 1.3B DiT and prompt → MP4 timed
# without and with --one-rank-group (the difference is NCCL's overhead) when the random-weight
# checkpoint of tests/gpu/run.sh exists. Results in $OUT: nccl-golden.txt, nccl-bench-{plain,nccl}.json.
# Usage: tests/gpu/nccl_one_rank.sh [BUILD]   (default build-bare)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bare}
OUT=${OUT:-gpu-out}
WORK=${TV_GPU_WORK:-/tmp/turbovid-gpu}
ENGINE=$BUILD/engine/turbovid-engine
mkdir -p "$OUT"
status=0
export NCCL_NVLS_ENABLE=0  # the engine sets it too; never NVLink multicast on a shared host
echo "== golden cases on cuda, one NCCL rank with every collective"
timeout 300 "$ENGINE" golden --backend cuda --collectives tests/data/golden/*/ \
  >"$OUT/nccl-golden.txt" 2>&1 || status=1
cat "$OUT/nccl-golden.txt"
if [ -d "$WORK/wan2.1-t2v-1.3b" ]; then
  for mode in plain nccl; do
    flag=(); [ $mode = nccl ] && flag=(--one-rank-group)
    echo "== 1.3B 480p DiT and prompt → MP4, $mode"
    timeout 300 "$ENGINE" bench --model-dir "$WORK/wan2.1-t2v-1.3b" --backend cuda \
      --resolution 480p --attention sla --stages dit,e2e --repeat 5 --work-dir "$WORK/bench" \
      --json "$OUT/nccl-bench-$mode.json" "${flag[@]}" >"$OUT/nccl-bench-$mode.txt" 2>&1 || status=1
    grep -E "one-rank group|dit_sample_total|generate_e2e" "$OUT/nccl-bench-$mode.txt"
  done
fi
exit $status
