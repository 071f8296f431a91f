#!/usr/bin/env bash
# Builds the engine, the kernels, turbovid-engine, the backend-ops parity test and the kernel
# benchmark on a bare GPU machine image: CUDA 13 + CMake + Ninja + g++, none of the Debian -dev
# packages. The Debian packages the engine needs come carried in .debs/ (scripts/gpu_debs.sh, run
# on a Debian machine) and are unpacked here with dpkg -x into BUILD/debroot; their pkg-config
# files are pointed at that folder and the link uses -rpath-link / -rpath to it. gRPC, protobuf,
# FFmpeg and SQLite stay off (TV_BUILD_SERVICE=OFF, TV_WITH_FFMPEG=OFF; MP4 goes through libx264).
# With --service (and .debs/ made by `scripts/gpu_debs.sh --service`) it also builds the service:
# turbovid-scheduler, turbovid-worker (CUDA backend), the turbovid CLI and the Python stubs, still
# without FFmpeg, and writes BUILD/bin/{python3,prometheus,spm_train}: Debian's Python 3.11 with
# grpcio, and Prometheus, run from the unpacked tree.
# Usage (on the GPU machine, repository root): scripts/build_bare.sh [--service] [BUILD_DIR]
#   env: TV_BARE_ARCHS (default 90a), TV_BARE_JOBS (default nproc), TV_NVCC_JOBS (default 8),
#        TV_DEBS (default .debs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICE=0
if [ "${1:-}" = "--service" ]; then SERVICE=1; shift; fi
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
if [ "$SERVICE" = 1 ]; then
  [ -f "$DEBS/service-root.tar.xz" ] ||
    { echo "build_bare: --service needs $DEBS/service-root.tar.xz ('scripts/gpu_debs.sh --service')" >&2; exit 1; }
  tar -C "$DEB_ROOT" -xJf "$DEBS/service-root.tar.xz"
fi
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

TARGETS=(turbovid-engine tv_parity_test turbovid-kernel-bench)
SERVICE_ARGS=(-DTV_BUILD_SERVICE=OFF)
if [ "$SERVICE" = 1 ]; then
  mkdir -p "$BUILD/bin"
  # protoc needs the carried libprotoc; the gRPC plugins it starts inherit its environment.
  cat >"$BUILD/bin/protoc" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DEB_ROOT/usr/bin/protoc" "\$@"
WRAP
  # Debian's Python 3.11 from the unpacked tree (its stdlib, grpcio and protobuf), the generated
  # stubs on its path. The machine's own python3 stays what it was.
  cat >"$BUILD/bin/python3" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PYTHONHOME="$DEB_ROOT/usr"
export PYTHONPATH="$DEB_ROOT/usr/lib/python3/dist-packages:$BUILD/python\${PYTHONPATH:+:\$PYTHONPATH}"
exec "$DEB_ROOT/usr/bin/python3.11" "\$@"
WRAP
  ln -sf "$DEB_ROOT/usr/bin/prometheus" "$BUILD/bin/prometheus"
  # spm_train (make-tiny-checkpoint trains the tiny tokenizers with it) needs the carried library.
  cat >"$BUILD/bin/spm_train" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DEB_ROOT/usr/bin/spm_train" "\$@"
WRAP
  chmod +x "$BUILD/bin/spm_train"
  chmod +x "$BUILD/bin/protoc" "$BUILD/bin/python3"
  SERVICE_ARGS=(-DTV_BUILD_SERVICE=ON -DTV_PROTOC="$BUILD/bin/protoc"
    -DTV_GRPC_CPP_PLUGIN="$DEB_ROOT/usr/bin/grpc_cpp_plugin"
    -DTV_GRPC_PYTHON_PLUGIN="$DEB_ROOT/usr/bin/grpc_python_plugin")
  TARGETS+=(turbovid-scheduler turbovid-worker turbovid tv_proto_python)
fi

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
  -DTV_NVCC_JOBS="$NVCC_JOBS" "${SERVICE_ARGS[@]}" -DTV_WITH_FFMPEG=OFF -DTV_WITH_X264=ON \
  -DTV_BUILD_TESTS=ON
ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}"
echo "build_bare: built in $BUILD: ${TARGETS[*]}"
