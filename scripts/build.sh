#!/usr/bin/env bash
# Configures and builds turbovid into build/ (CUDA parts too when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# BUILD_TYPE: Debug, Release or RelWithDebInfo (default); TV_WERROR=ON turns warnings into errors (CI).
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DTV_BUILD_SERVICE=ON \
  -DTV_WERROR="${TV_WERROR:-OFF}" ${CMAKE_ARGS:-} >/dev/null
if grep -q '^TV_BUILD_CUDA:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
  echo "CUDA: building the CUDA backend with $(grep -m1 '^TV_NVCC:' "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
else
  echo "CUDA: no nvcc found (or TV_BUILD_CUDA=OFF): CPU-only build, the GPU tests are not built"
fi
start=$(date +%s)
ninja -C "$BUILD_DIR" ${NINJA_FLAGS:-}
echo "build took $(( $(date +%s) - start ))s"
