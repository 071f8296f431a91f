#!/usr/bin/env bash
# Installs the Debian 12 packages turbovid builds and tests with (only those missing).
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libabsl-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libyaml-cpp-dev libcivetweb-dev libsqlite3-dev libzip-dev libssl-dev openssl curl
  libsentencepiece-dev sentencepiece
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg libx264-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  prometheus python3-grpcio python3-protobuf python3-numpy
  clang libclang-rt-14-dev
  chromium chromium-driver
  buildah podman debootstrap unzip python3-yaml
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the OpenAI SDK test (tests/e2e/openai/) and install the deployment tests'
# helm and validators (scripts/install-deploy-tools.sh): Debian's packages unless a node
# and npm are on the PATH already (a NodeSource nodejs bundles its own npm, which Debian's npm
# package would conflict with).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
