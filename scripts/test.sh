#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, golden, end-to-end),
# then the service tests under ThreadSanitizer and AddressSanitizer, then the fuzzers for a bounded
# time.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 1500 -j "${CTEST_JOBS:-2}")
# The service tests again under ThreadSanitizer and under AddressSanitizer+UBSan, each in its own
# build dir (scripts/sanitize.sh). TV_SANITIZE_TESTS=0 skips them (CI runs them).
if [ "${TV_SANITIZE_TESTS:-1}" != 0 ]; then
  ./scripts/sanitize.sh thread
  ./scripts/sanitize.sh address
fi
if [ -x scripts/fuzz.sh ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} ./scripts/fuzz.sh
fi
