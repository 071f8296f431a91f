#!/usr/bin/env bash
# Configures and builds turbovid (CPU parts; CUDA parts join when their issue lands) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTV_BUILD_SERVICE=ON >/dev/null
start=$(date +%s)
ninja -C "$BUILD_DIR" ${NINJA_FLAGS:-}
echo "build took $(( $(date +%s) - start ))s"
