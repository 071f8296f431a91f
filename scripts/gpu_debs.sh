#!/usr/bin/env bash
# Downloads (here, on a Debian 12 machine) the Debian packages the engine needs to be *built* on a
# bare GPU machine image (CUDA 13, CMake, Ninja, g++, but no Debian -dev packages), into .debs/
# (git-ignored, about 5 MB). A device call carries .debs/ and runs scripts/build_bare.sh, which
# unpacks them with dpkg -x and builds the engine there. Nothing is fetched on the GPU machine.
#   Abseil, libzip, SentencePiece, yaml-cpp, civetweb (engine + common), libx264 (MP4 without
#   FFmpeg), GoogleTest + GoogleMock (the parity test), pkgconf (CMake's pkg_check_modules).
# With --service it adds what the whole service needs there (about 45 MB more): gRPC, protobuf,
# protoc and its gRPC plugins, SQLite, zlib headers (PNG decoding), Debian's Python 3.11 with
# grpcio + protobuf (the GPU machine's own Python is another version; the Python client tests run
# on this one) and Prometheus + promtool. FFmpeg is never carried: MP4 goes through libx264 and
# I2V images are PNGs decoded by the project's own decoder.
# Usage: scripts/gpu_debs.sh [--service] [DIR]   (default .debs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICE=0
if [ "${1:-}" = "--service" ]; then SERVICE=1; shift; fi
DIR=${1:-$ROOT/.debs}
PKGS=(libabsl-dev libabsl20220623 libzip-dev libzip4 libsentencepiece-dev libsentencepiece0
  libyaml-cpp-dev libyaml-cpp0.7 libcivetweb-dev libcivetweb1 libx264-dev libx264-164 libgtest-dev
  libgmock-dev
  pkgconf pkgconf-bin libpkgconf3)
if [ "$SERVICE" = 1 ]; then
  PKGS+=(libgrpc++-dev libgrpc++1.51 libgrpc-dev libgrpc29 libc-ares-dev libc-ares2 libre2-dev
    libre2-9 libssl-dev libssl3 libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32
    protobuf-compiler protobuf-compiler-grpc libsqlite3-dev libsqlite3-0 zlib1g-dev
    python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3-grpcio python3-protobuf
    prometheus)
fi
# A fresh machine has no package lists yet.
if ! apt-cache show libabsl-dev >/dev/null 2>&1; then
  apt-get update
fi
rm -rf "$DIR"
mkdir -p "$DIR"
# apt-get download writes into the current directory; as root it warns that _apt cannot write
# there, which is harmless.
(cd "$DIR" && apt-get download "${PKGS[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
n=$(find "$DIR" -name '*.deb' | wc -l)
if [ "$n" -ne "${#PKGS[@]}" ]; then
  echo "gpu_debs: expected ${#PKGS[@]} packages in $DIR, found $n" >&2
  exit 1
fi
du -sh "$DIR"
