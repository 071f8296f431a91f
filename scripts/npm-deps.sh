#!/usr/bin/env bash
# Installs an npm package folder of the repository from its committed package-lock.json into a
# folder outside the source tree (npm ci: exactly the locked versions, no lockfile changes).
#   scripts/npm-deps.sh SOURCE_DIR DEST_DIR
# Copies SOURCE_DIR's package.json, package-lock.json and *.cjs files into DEST_DIR and runs
# `npm ci` there unless DEST_DIR already holds what that lockfile installs. Used by the tests that
# run npm packages (tests/e2e/test_openai_sdk.py); scripts/install-deps.sh installs node and npm.
set -euo pipefail
src=${1:?usage: npm-deps.sh SOURCE_DIR DEST_DIR}
dest=${2:?usage: npm-deps.sh SOURCE_DIR DEST_DIR}
command -v npm >/dev/null || { echo "npm-deps: npm is missing (scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
for f in "$src"/*.cjs; do [ -e "$f" ] && cp "$f" "$dest/"; done
stamp="$dest/node_modules/.turbovid-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$src/package-lock.json"; then
  exit 0
fi
# A lock file taken by a concurrent run waits here (ctest may start two npm tests at once).
exec 9>"$dest/.npm-deps.lock"
flock 9
if [ -f "$stamp" ] && cmp -s "$stamp" "$src/package-lock.json"; then
  exit 0
fi
(cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
cp "$src/package-lock.json" "$stamp"
