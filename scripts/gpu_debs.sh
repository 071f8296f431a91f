#!/usr/bin/env bash
# Downloads (here, on a Debian 12 machine) the Debian packages the engine needs to be *built* on a
# bare GPU machine image (CUDA 13, CMake, Ninja, g++, but no Debian -dev packages), into .debs/
# (git-ignored, about 5 MB). A device call carries .debs/ and runs scripts/build_bare.sh, which
# unpacks them with dpkg -x and builds the engine there. Nothing is fetched on the GPU machine.
#   Abseil, libzip, SentencePiece, yaml-cpp, civetweb (engine + common), libx264 (MP4 without
#   FFmpeg), GoogleTest + GoogleMock (the parity test), pkgconf (CMake's pkg_check_modules).
# With --service it adds what the whole service needs there: gRPC, protobuf, protoc and its gRPC
# plugins, SQLite, zlib headers (PNG decoding), Debian's Python 3.11 with grpcio + protobuf (the GPU
# machine's own Python is another version; the Python client tests run on this one) and
# Prometheus, and spm_train (sentencepiece: the tiny checkpoints' tokenizers). A device call carries at most 64 MiB with the repository (about 36 MB), so these are
# not kept as .debs: they are unpacked here, pruned (static libraries, docs, the Python test
# suite, promtool: the exposition a GPU run writes is checked with promtool where it lands) and
# packed as DIR/service-root.tar.xz (about 27 MB; xz -9e takes two minutes on two cores), which
# scripts/build_bare.sh --service unpacks. FFmpeg is never carried: MP4 goes through libx264 and
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
# OpenSSL (common/ terminates TLS): a plain .deb without --service, inside the packed tree (xz keeps
# the carried folder under the device tool's 64 MiB) with it.
SSL_PKGS=(libssl-dev libssl3)
SERVICE_PKGS=()
[ "$SERVICE" = 1 ] || PKGS+=("${SSL_PKGS[@]}")
if [ "$SERVICE" = 1 ]; then
  SERVICE_PKGS=(libgrpc++-dev libgrpc++1.51 libgrpc-dev libgrpc29 libc-ares-dev libc-ares2 libre2-dev
    libre2-9 "${SSL_PKGS[@]}" libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32
    protobuf-compiler protobuf-compiler-grpc libsqlite3-dev libsqlite3-0 zlib1g-dev
    python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3-grpcio python3-protobuf
    prometheus sentencepiece)
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
if [ "$SERVICE" = 1 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download "${SERVICE_PKGS[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  n=$(find "$tmp" -name '*.deb' | wc -l)
  if [ "$n" -ne "${#SERVICE_PKGS[@]}" ]; then
    echo "gpu_debs: expected ${#SERVICE_PKGS[@]} service packages, found $n" >&2
    exit 1
  fi
  mkdir "$tmp/root"
  for f in "$tmp"/*.deb; do dpkg -x "$f" "$tmp/root"; done
  (cd "$tmp/root/usr" && rm -rf share/doc share/man share/locale share/lintian bin/promtool \
    bin/grpc_php_plugin bin/grpc_ruby_plugin lib/x86_64-linux-gnu/*.a)
  py=$tmp/root/usr/lib/python3.11
  rm -rf "$py"/{test,idlelib,lib2to3,ensurepip,tkinter,pydoc_data,turtledemo,distutils,sqlite3} \
    "$py"/{xmlrpc,curses,dbm,venv,__phello__,config-3.11-x86_64-linux-gnu}
  tar -C "$tmp/root" -cf - . | xz -T0 -9e >"$DIR/service-root.tar.xz"
fi
du -sh "$DIR"
