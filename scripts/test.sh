#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, golden, end-to-end),
# then the fuzzers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 1500 -j "${CTEST_JOBS:-2}")
if [ -x scripts/fuzz.sh ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} ./scripts/fuzz.sh
fi
