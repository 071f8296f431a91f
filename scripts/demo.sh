#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo: scheduler + one CPU worker on loopback,
# one T2V and one I2V video from tiny random checkpoints, through the public gRPC API.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
exec "$BUILD_DIR/tools/turbovid" demo "$@"
