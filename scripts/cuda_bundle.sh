#!/usr/bin/env bash
# Builds the CUDA engine for the H100 here (the GPU image has CUDA 13 but none of our Debian
# libraries) and assembles .cudarun/, which the device calls carry:
#   .cudarun/bin/   turbovid-engine, tv_parity_test, turbovid-kernel-bench (when that target exists),
#                   debug info stripped
#   .cudarun/lib/   the non-system shared libraries they load (Abseil, libzip and its codecs,
#                   yaml-cpp, civetweb, libx264, ...), found with ldd; glibc, libstdc++/libgcc_s
#                   and CUDA's own libraries (driver, cudart, cuBLASLt, NCCL: the image has them)
#                   stay out
#   .cudarun/run    `.cudarun/run BINARY ARGS...` with LD_LIBRARY_PATH set
# The build is a separate folder (build-cudarun) with sm_90a only, no service (gRPC, SQLite) and
# no FFmpeg: its libraries and their codecs weigh about 160 MB, far over the 64 MiB a device call
# may carry. MP4 encoding goes through libx264 alone there (TV_WITH_X264, engine/video/mp4_x264.h:
# about 2 MB, needing only libc and libm); image decoding answers Unimplemented.
# Usage: scripts/cuda_bundle.sh            (env: TV_BUNDLE_BUILD_DIR, TV_BUNDLE_OUT, TV_BUNDLE_ARCHS,
#                                          TV_BUNDLE_JOBS; defaults build-cudarun, .cudarun, 90a, 1)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${TV_BUNDLE_BUILD_DIR:-$ROOT/build-cudarun}
BUNDLE=${TV_BUNDLE_OUT:-$ROOT/.cudarun}
ARCHS=${TV_BUNDLE_ARCHS:-90a}
JOBS=${TV_BUNDLE_JOBS:-1}
LIMIT_MIB=64
export CCACHE_NOHASHDIR=1

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTV_BUILD_SERVICE=OFF \
  -DTV_WITH_FFMPEG=OFF -DTV_WITH_X264=ON -DTV_BUILD_CUDA=ON -DTV_CUDA_ARCHS="$ARCHS" \
  -DTV_BUILD_TESTS=ON >/dev/null
targets=(turbovid-engine tv_parity_test)
# (grep on a captured list: `ninja ... | grep -q` fails under pipefail when grep exits early)
all_targets=$(ninja -C "$BUILD" -t targets all)
if grep -q '^turbovid-kernel-bench:' <<<"$all_targets"; then
  targets+=(turbovid-kernel-bench)
fi
ninja -C "$BUILD" -j"$JOBS" "${targets[@]}"

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
# Libraries the GPU image has (or must not be shadowed): glibc, the C++ runtime, CUDA's own.
skip='^(ld-linux.*|linux-vdso.*|libc|libm|libdl|librt|libpthread|libresolv|libutil|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libnccl|libnvrtc|libnvJitLink|libnvidia-.*)\.so'
for t in "${targets[@]}"; do
  bin=$(find "$BUILD" -maxdepth 3 -type f -name "$t" -perm -u+x | head -1)
  [ -n "$bin" ] || { echo "cuda_bundle: built target $t not found under $BUILD" >&2; exit 1; }
  strip --strip-debug -o "$BUNDLE/bin/$t" "$bin"
  if ldd "$bin" | grep -q 'not found'; then
    ldd "$bin" | grep 'not found' >&2
    exit 1
  fi
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    name=$(basename "$lib")
    case "$lib" in /usr/local/cuda*) continue ;; esac
    echo "$name" | grep -Eq "$skip" && continue
    [ -e "$BUNDLE/lib/$name" ] || cp -L "$lib" "$BUNDLE/lib/$name"
  done
done

cat >"$BUNDLE/run" <<'EOF'
#!/bin/sh
# .cudarun/run BINARY ARGS...: a bundled binary with the bundle's libraries first, then CUDA's.
here=$(cd "$(dirname "$0")" && pwd)
path="$here/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && path="$path:$d"
done
export LD_LIBRARY_PATH="$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
name=$1
shift
exec "$here/bin/$name" "$@"
EOF
chmod +x "$BUNDLE/run"

# The bundle must stay out of git (it is carried as an ignored path).
exclude="$ROOT/.git/info/exclude"
if [ -d "$ROOT/.git" ] && ! grep -qx '/.cudarun/' "$exclude" 2>/dev/null; then
  echo '/.cudarun/' >>"$exclude"
fi

size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "cuda_bundle: $BUNDLE holds ${targets[*]} and $(ls "$BUNDLE/lib" | wc -l) libraries," \
  "$((size_kib / 1024)) MiB (limit ${LIMIT_MIB} MiB)"
du -sh "$BUNDLE/bin"/* "$BUNDLE/lib" | sed 's/^/  /'
if [ "$size_kib" -ge $((LIMIT_MIB * 1024)) ]; then
  echo "cuda_bundle: the bundle exceeds ${LIMIT_MIB} MiB and cannot be carried" >&2
  exit 1
fi
