#!/usr/bin/env bash
# Builds the engine, the kernels, turbovid-engine, the backend-ops parity test and the kernel
# benchmark on a bare GPU machine image: CUDA 13 + CMake + Ninja + g++, none of the Debian -dev
# packages. The Debian packages the engine needs come carried in .debs/ (scripts/gpu_debs.sh, run
# on a Debian machine) and are unpacked here with dpkg -x into BUILD/debroot; their pkg-config
# files are pointed at that folder and the link uses -rpath-link / -rpath to it. gRPC, protobuf,
# FFmpeg and SQLite stay off (TV_BUILD_SERVICE=OFF, TV_WITH_FFMPEG=OFF; MP4 goes through libx264).
# Usage (on the GPU machine, repository root): scripts/build_bare.sh [BUILD_DIR]
#   env: TV_BARE_ARCHS (default 90a), TV_BARE_JOBS (default nproc), TV_NVCC_JOBS (default 8),
#        TV_DEBS (default .debs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(realpath -m "${1:-$ROOT/build-bare}")  # absolute: it ends up in the .pc files
DEBS=${TV_DEBS:-$ROOT/.debs}
ARCHS=${TV_BARE_ARCHS:-90a}
JOBS=${TV_BARE_JOBS:-$(nproc)}
NVCC_JOBS=${TV_NVCC_JOBS:-8}
DEB_ROOT=$BUILD/debroot
LIBDIR=$DEB_ROOT/usr/lib/x86_64-linux-gnu

compgen -G "$DEBS/*.deb" >/dev/null || { echo "build_bare: no .deb files in $DEBS (run scripts/gpu_debs.sh)" >&2; exit 1; }
for tool in cmake ninja g++ dpkg; do
  command -v "$tool" >/dev/null || { echo "build_bare: $tool not found" >&2; exit 1; }
done
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$NVCC" ] || { echo "build_bare: nvcc not found" >&2; exit 1; }

rm -rf "$DEB_ROOT"
mkdir -p "$DEB_ROOT"
for f in "$DEBS"/*.deb; do dpkg -x "$f" "$DEB_ROOT"; done
# The packages' .pc files name /usr; point them at the unpacked tree.
for pc in "$LIBDIR"/pkgconfig/*.pc "$DEB_ROOT"/usr/share/pkgconfig/*.pc; do
  [ -e "$pc" ] && sed -i "s#/usr#$DEB_ROOT/usr#g" "$pc"
done
# civetweb is found with find_library/find_path (common/CMakeLists.txt), which the image's own
# compiler (not a multiarch one) does not look for under lib/x86_64-linux-gnu: named directly.
# The carried pkgconf, reading only the carried .pc files.
cat >"$BUILD/pkg-config" <<PKG
#!/bin/sh
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$DEB_ROOT/usr/share/pkgconfig"
exec "$DEB_ROOT/usr/bin/pkgconf" "\$@"
PKG
chmod +x "$BUILD/pkg-config"

# DT_RPATH (--disable-new-dtags), not RUNPATH: Abseil's libraries load each other, and only RPATH
# is searched for a library's own dependencies.
link="-Wl,-rpath-link,$LIBDIR -Wl,-rpath,$LIBDIR -Wl,--disable-new-dtags"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
  -DCMAKE_PREFIX_PATH="$DEB_ROOT/usr" -DCMAKE_INCLUDE_PATH="$DEB_ROOT/usr/include" \
  -DCMAKE_LIBRARY_PATH="$LIBDIR" -DPKG_CONFIG_EXECUTABLE="$BUILD/pkg-config" \
  -DTV_CIVETWEB_LIB="$LIBDIR/libcivetweb.so" -DTV_CIVETWEB_INCLUDE="$DEB_ROOT/usr/include" \
  -DCMAKE_EXE_LINKER_FLAGS="$link" -DCMAKE_SHARED_LINKER_FLAGS="$link" \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DTV_BUILD_CUDA=ON -DTV_CUDA_ARCHS="$ARCHS" \
  -DTV_NVCC_JOBS="$NVCC_JOBS" -DTV_BUILD_SERVICE=OFF -DTV_WITH_FFMPEG=OFF -DTV_WITH_X264=ON \
  -DTV_BUILD_TESTS=ON
ninja -C "$BUILD" -j"$JOBS" turbovid-engine tv_parity_test turbovid-kernel-bench
echo "build_bare: built in $BUILD: engine/turbovid-engine tests/parity/tv_parity_test bench/turbovid-kernel-bench"
