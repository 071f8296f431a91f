#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in their own build dir and
# runs each for a bounded time on a seed corpus from the golden files. Exits non-zero on a crash.
# Usage: scripts/fuzz.sh [SECONDS]   (default $FUZZ_SECONDS or 30 per target)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_TARGET=${1:-${FUZZ_SECONDS:-30}}
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
GOLDEN=$ROOT/tests/data/golden
TARGETS=(fuzz_safetensors fuzz_pickle fuzz_pth)

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DTV_BUILD_SERVICE=OFF -DTV_BUILD_TESTS=OFF -DTV_BUILD_FUZZERS=ON >/dev/null
ninja -C "$BUILD" "${TARGETS[@]}"

# Seeds: every golden safetensors file; data.pkl and the whole archive of rcm_t2v/weights.pth.
SEEDS=$BUILD/seeds
rm -rf "$SEEDS"
mkdir -p "$SEEDS"/{fuzz_safetensors,fuzz_pickle,fuzz_pth}
for f in "$GOLDEN"/*/*.safetensors; do
  cp "$f" "$SEEDS/fuzz_safetensors/$(basename "$(dirname "$f")")_$(basename "$f")"
done
python3 - "$GOLDEN/rcm_t2v/weights.pth" "$SEEDS/fuzz_pickle/data.pkl" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
open(sys.argv[2], "wb").write(z.read(name))
PY
cp "$GOLDEN/rcm_t2v/weights.pth" "$SEEDS/fuzz_pth/"

status=0
for t in "${TARGETS[@]}"; do
  corpus=$BUILD/corpus/$t
  artifacts=$BUILD/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "== $t: ${SECONDS_PER_TARGET}s"
  if ! "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$SEEDS/$t" \
      >"$BUILD/$t.log" 2>&1; then
    echo "FAIL $t (see $BUILD/$t.log; inputs in $artifacts)"
    tail -40 "$BUILD/$t.log"
    status=1
  else
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)|Done [0-9]+ runs" "$BUILD/$t.log" || true
    echo "ok $t"
  fi
done
exit $status
