#!/bin/sh
# Prepares the build context of an image from a build tree: the binaries it ships, stripped of
# debug info, under DIR/bin, the packages they link (runtime-packages.sh) in
# DIR/runtime-packages.txt, and install-runtime.sh. The images' `source` stage runs it after
# compiling; CI runs it over the tree the tests were built in (BINARIES=staged: nothing compiled
# again).
#   deploy/docker/stage.sh BUILD_DIR DIR scheduler|worker
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
mkdir -p "$DIR/bin"
paths=""
for b in $bins; do
  [ -x "$BUILD/$b" ] || { echo "stage.sh: $BUILD/$b is not built" >&2; exit 1; }
  objcopy --strip-debug "$BUILD/$b" "$DIR/bin/$(basename "$b")"
  paths="$paths $BUILD/$b"
done
"$HERE/runtime-packages.sh" $paths >"$DIR/runtime-packages.txt"
cp "$HERE/install-runtime.sh" "$DIR/"
