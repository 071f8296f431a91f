#!/usr/bin/env bash
# Builds the service with a sanitizer in its own build dir and runs the service tests under it
# (docs/reliability.md, "Sanitizer runs"):
#   scripts/sanitize.sh thread    ThreadSanitizer, build-tsan/
#   scripts/sanitize.sh address   AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer, build-asan/
# The tests: every unit test of common/, server/, scheduler/ and worker/ (their five test
# executables) and the end-to-end cases of SANITIZE_E2E (default: the ones that drive the most
# concurrency). Any sanitizer report fails the run, in a test process or in a scheduler, worker or
# CLI the e2e tests start: each report is also written to a log file, and a log file left
# behind fails the run even where the test itself passed.
# Environment: SANITIZE_E2E (space-separated e2e case names), CTEST_JOBS (default 2),
# SANITIZE_BUILD_DIR (default build-tsan / build-asan), TV_WERROR as scripts/build.sh (the TSan
# build compiles the engine exactly as the main build does, so ccache reuses its objects).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-}
case "$MODE" in
  thread) BUILD=${SANITIZE_BUILD_DIR:-$ROOT/build-tsan} ;;
  address) BUILD=${SANITIZE_BUILD_DIR:-$ROOT/build-asan} ;;
  *) echo "usage: $0 thread|address" >&2; exit 2 ;;
esac
E2E=${SANITIZE_E2E:-generate cancel worker_kill large_image auth slow_loris}
UNIT_BINARIES=(tv_common_test tv_server_test tv_scheduler_core_test tv_scheduler_test tv_worker_test)
SUPP=$ROOT/tests/sanitizers

start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTV_BUILD_SERVICE=ON \
  -DTV_BUILD_CUDA=OFF -DTV_SANITIZE="$MODE" -DTV_WERROR="${TV_WERROR:-OFF}" >/dev/null
ninja -C "$BUILD" ${NINJA_FLAGS:-} "${UNIT_BINARIES[@]}" tv_e2e_deps
built=$(date +%s)
echo "sanitize $MODE: build took $((built - start))s"

# Reports go to stderr (the test output) and to $LOGS/<tool>.<pid>.
LOGS=$BUILD/sanitizer-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
if [ "$MODE" = thread ]; then
  # halt_on_error: the first race ends the process with exit code 66, so a test cannot pass over it.
  # ignore_noninstrumented_modules: memcpy/free inside Debian's (uninstrumented) gRPC, Abseil,
  # protobuf, SQLite and civetweb are not checked (TSan cannot see their locks).
  export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 \
ignore_noninstrumented_modules=1 suppressions=$SUPP/tsan.supp log_path=$LOGS/tsan"
else
  export ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 detect_stack_use_after_return=1 \
strict_string_checks=1 check_initialization_order=1 log_path=$LOGS/asan"
  export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 suppressions=$SUPP/ubsan.supp \
log_path=$LOGS/ubsan"
fi

# The tests by number: those whose executable is one of UNIT_BINARIES, and the e2e cases named
# (ctest adds the e2e_models fixture they require).
cd "$BUILD"
tests=$(ctest --show-only=json-v1 | python3 -c '
import json, os, sys
units, e2e = set(sys.argv[1].split()), {"e2e_" + c for c in sys.argv[2].split()}
found, picked = set(), []
for i, t in enumerate(json.load(sys.stdin)["tests"], 1):
    exe = os.path.basename((t.get("command") or [""])[0])
    if exe in units or t["name"] in e2e:
        picked.append(str(i))
        found.add(t["name"] if t["name"] in e2e else exe)
missing = (units | e2e) - found
if missing:
    sys.exit("sanitize: no tests found for " + " ".join(sorted(missing)))
print(",".join(picked))' "${UNIT_BINARIES[*]}" "$E2E")
status=0
ctest --output-on-failure --timeout 1500 -j "${CTEST_JOBS:-2}" -I "0,0,0,$tests" || status=1

if compgen -G "$LOGS/*" >/dev/null; then
  echo "sanitize $MODE: sanitizer reports (from the tests or the processes they started):"
  for f in "$LOGS"/*; do
    echo "--- $f"
    head -80 "$f"
  done
  status=1
fi
echo "sanitize $MODE: tests took $(($(date +%s) - built))s, $( [ $status = 0 ] && echo passed || echo FAILED)"
exit $status
