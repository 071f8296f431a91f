#!/bin/sh
# Prepares the build context of an image from a build tree: the binaries it ships, stripped of
# debug info, under DIR/bin, the packages they link (runtime-packages.sh) in
# DIR/runtime-packages.txt, and install-runtime.sh. The images' `source` stage runs it after
# compiling; CI runs it over the tree the tests were built in (BINARIES=staged: nothing compiled
# again).
#   deploy/docker/stage.sh BUILD_DIR DIR scheduler|worker
# A worker of a CUDA build (TV_BUILD_CUDA=ON in BUILD_DIR/CMakeCache.txt) links the CUDA runtime
# statically but opens libraries at run time: libcublasLt.so.N (needed: every GEMM) and
# libnccl.so.2 (optional: tensor-parallel groups over several GPUs; TV_STAGE_NCCL=0 leaves it
# out). They are copied, symlinks resolved, to DIR/lib (installed in /usr/local/lib of the image)
# with their licence files from the toolkit in DIR/licenses. They come from the folder of the
# cuBLASLt the build found (CUDA_cublasLt_LIBRARY in the cache), or TV_CUDA_LIB_DIR. NVML
# (libnvidia-ml.so.1) and libcuda.so.1 belong to the driver: the NVIDIA container runtime mounts
# them into the container.
set -eu
[ $# -eq 3 ] || { echo "usage: stage.sh BUILD_DIR DIR scheduler|worker" >&2; exit 2; }
BUILD=$1
DIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
case "$3" in
  scheduler) bins="scheduler/turbovid-scheduler tools/turbovid" ;;
  worker) bins="worker/turbovid-worker" ;;
  *) echo "stage.sh: image must be scheduler or worker" >&2; exit 2 ;;
esac
rm -rf "$DIR"
mkdir -p "$DIR/bin" "$DIR/lib" "$DIR/licenses"
paths=""
for b in $bins; do
  [ -x "$BUILD/$b" ] || { echo "stage.sh: $BUILD/$b is not built" >&2; exit 1; }
  objcopy --strip-debug "$BUILD/$b" "$DIR/bin/$(basename "$b")"
  paths="$paths $BUILD/$b"
done
"$HERE/runtime-packages.sh" $paths >"$DIR/runtime-packages.txt"
cp "$HERE/install-runtime.sh" "$DIR/"

if [ "$3" = worker ] && grep -q '^TV_BUILD_CUDA:BOOL=ON$' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  libdir=${TV_CUDA_LIB_DIR:-$(sed -n 's/^CUDA_cublasLt_LIBRARY:FILEPATH=//p' "$BUILD/CMakeCache.txt" |
                              xargs -r dirname)}
  [ -d "$libdir" ] || { echo "stage.sh: no CUDA library folder (set TV_CUDA_LIB_DIR)" >&2; exit 1; }
  root=$(cd "$libdir/.." && pwd -P)
  wanted="libcublasLt.so.[0-9]*:cublas"
  [ "${TV_STAGE_NCCL:-1}" = 0 ] || wanted="$wanted libnccl.so.[0-9]*:nccl"
  for entry in $wanted; do
    pattern=${entry%%:*}
    name=${entry##*:}
    # The soname (libX.so.N): the shortest of the matching names.
    lib=$(cd "$libdir" && ls -d $pattern 2>/dev/null | awk '{ print length, $0 }' | sort -n |
          awk 'NR == 1 { print $2 }')
    [ -n "$lib" ] || { echo "stage.sh: $libdir has no $pattern" >&2; exit 1; }
    cp -L "$libdir/$lib" "$DIR/lib/$lib"
    # Its licence: the toolkit's EULA.txt, or the licence files of its package in the toolkit.
    found=0
    for f in "$root/EULA.txt" $(find "$root" -maxdepth 4 -ipath "*$name*" -type f -iname 'licen[cs]e*' 2>/dev/null); do
      [ -f "$f" ] || continue
      cp "$f" "$DIR/licenses/$lib.$(basename "$f")"
      found=1
    done
    [ "$found" = 1 ] || { echo "stage.sh: no licence file for $lib under $root" >&2; exit 1; }
  done
fi
