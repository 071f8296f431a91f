#!/bin/bash
# Runs as root in the last stage of both images (deploy/docker/*.Containerfile), after the
# binaries were copied to /usr/local/bin, with runtime-packages.txt in the folder given: installs
# the packages the binaries link that the base lacks (none on a base made by make-base.sh, so no
# network then), adds the unprivileged user turbovid (uid/gid 10001, home /var/lib/turbovid),
# writes the copyright file of every Debian package a binary loads (ldd, transitively) to
# /usr/share/licenses/turbovid/, and drops apt's lists. Libraries staged beside the binaries
# (a CUDA worker's cuBLASLt and NCCL, deploy/docker/stage.sh) are in /usr/local/lib already; their
# licences come from the stage's licenses/ folder, and ldconfig makes them found.
set -euo pipefail
STAGE=$1
missing=""
for p in $(cat "$STAGE/runtime-packages.txt"); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
groupadd --system --gid 10001 turbovid
useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/turbovid --create-home \
  --shell /usr/sbin/nologin turbovid
mkdir -p /etc/turbovid /usr/share/licenses/turbovid
ldconfig
# Licences: the package of every library the binaries and the staged libraries load.
for bin in /usr/local/bin/turbovid* $(ls /usr/local/lib/*.so* 2>/dev/null); do
  ldd "$bin" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | grep -v '^/usr/local/lib/' | sort -u | while read -r lib; do
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true)
  [ -n "$owner" ] || { echo "install-runtime: no package owns $lib" >&2; exit 1; }
  echo "${owner%%:*}"
done | sed 's/,.*//' | sort -u | while read -r pkg; do
  src=/usr/share/doc/$pkg/copyright
  [ -f "$src" ] || { echo "install-runtime: $pkg has no $src" >&2; exit 1; }
  cp "$src" "/usr/share/licenses/turbovid/$pkg.copyright"
done
cp "$STAGE"/licenses/* /usr/share/licenses/turbovid/ 2>/dev/null || true
ls /usr/share/licenses/turbovid >/usr/share/licenses/turbovid/PACKAGES
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
