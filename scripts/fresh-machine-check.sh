#!/usr/bin/env bash
# Tries the README's two commands (scripts/demo.sh, scripts/test.sh) as a new user would: on a
# minimal Debian 12 made by debootstrap in a temporary folder, entered with chroot, once without
# CUDA and once with the host's CUDA toolkit bind-mounted under its versioned path plus the
# /usr/local/cuda symlink (NVIDIA's layout). Prints what passed; logs stay in the work folder.
#
# Usage (as root on a Debian host with network to its package mirror; about 30 min a pass on
# 2 cores, so it is not part of CI):
#   scripts/fresh-machine-check.sh [--pass nocuda|cuda|both] [--work DIR] [--keep]
#     --pass    which passes to run (default both: nocuda first, then cuda in the same root)
#     --work    work folder (default: a new folder under /var/tmp); --keep keeps it afterwards
#               (unmounted; while the script runs it holds bind mounts of the host's /dev and CUDA,
#               so never rm -rf it then)
#   FRESH_BASE_TAR   cache of the debootstrap result (default /var/cache/turbovid/bookworm-minbase.tar);
#                    made on the first run, untarred on later ones (the base is the same stock system)
#   CUDA_HOME        the host toolkit to mount (default: where /usr/local/cuda points)
#   FRESH_ENV        extra VAR=VALUE words for the commands inside the root, e.g.
#                    "TV_SANITIZE_TESTS=0" to leave the sanitizer runs (CI's) out of a pass
#
# What is the host's and not stock: the package sources and apt's fetch settings, and npm's
# registry and CA file, are copied from the host, so the chroot installs from wherever the host
# does. Container builds (the deploy_images test) run with containers/storage's vfs driver
# (STORAGE_DRIVER=vfs): its default overlay driver cannot mount inside a chroot; vfs copies
# layers instead of mounting them (slower, same images); the root is bind-mounted on itself so
# that "/" is a mount point there. The repository is
# cloned from its committed HEAD (uncommitted changes are not checked). Both passes share one root, so the cuda
# pass starts with the packages the nocuda pass installed (the same ones install-deps.sh would).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PASSES=both
WORK=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pass) PASSES=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "fresh-machine-check: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
case "$PASSES" in
  both) PASSES="nocuda cuda" ;;
  nocuda|cuda) ;;
  *) echo "fresh-machine-check: --pass must be nocuda, cuda or both" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: run as root (debootstrap, mount, chroot)" >&2; exit 2; }
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

WORK=${WORK:-$(mktemp -d /var/tmp/tv-fresh.XXXXXX)}
ROOTFS=$WORK/root
LOGS=$WORK/logs
mkdir -p "$ROOTFS" "$LOGS"
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -R -l "${MOUNTS[$i]}" 2>/dev/null || true; done
  # Never delete through a mount that is still there: the root holds the host's /dev and CUDA.
  if grep -q " $WORK/" /proc/mounts; then
    echo "fresh-machine-check: mounts under $WORK remain; not removing it (umount -R them first)" >&2
  elif [ "$KEEP" = 0 ]; then
    rm -rf "$WORK-logs" && mv "$LOGS" "$WORK-logs" 2>/dev/null && echo "logs: $WORK-logs"
    rm -rf "$WORK"
  else
    echo "work folder kept: $WORK"
  fi
}
trap cleanup EXIT
bind() {  # bind SRC DST: mount SRC on DST inside the root, unmounted on exit
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
}

# The host's Debian mirror for the suite (first "deb" source that lists bookworm), else
# debootstrap's own default.
host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" } /Suites:[^\n]*bookworm( |$|\n)/ && !/debian-security/ {
           for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, a, " "); print a[2]; exit } }' "$f"
  done
}

BASE_TAR=${FRESH_BASE_TAR:-/var/cache/turbovid/bookworm-minbase.tar}
t0=$(date +%s)
if [ -s "$BASE_TAR" ]; then
  echo "== base: $BASE_TAR"
  tar -C "$ROOTFS" -xf "$BASE_TAR"
else
  mirror=$(host_mirror | head -1)
  echo "== debootstrap --variant=minbase bookworm ${mirror:-(the default mirror of debootstrap)}"
  debootstrap --variant=minbase bookworm "$ROOTFS" ${mirror:+"$mirror"} >"$LOGS/debootstrap.log" 2>&1 ||
    { tail -20 "$LOGS/debootstrap.log"; exit 1; }
  mkdir -p "$(dirname "$BASE_TAR")"
  tar -C "$ROOTFS" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
fi
echo "   base ready in $(( $(date +%s) - t0 ))s"

# The host's package sources and fetch settings (see the banner), name resolution, and the
# kernel file systems a build and its tests use.
rm -f "$ROOTFS"/etc/apt/sources.list
cp -a /etc/apt/sources.list* "$ROOTFS/etc/apt/" 2>/dev/null || true
cp -a /etc/apt/apt.conf.d/. "$ROOTFS/etc/apt/apt.conf.d/" 2>/dev/null || true
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
# npm's registry and certificate settings, likewise the host's: the tests' `npm ci` (helm, the
# Kubernetes validators, the openai SDK) then fetch the way the host's npm does, also where a
# TLS-inspecting proxy's CA is trusted by the host and not by a stock Debian.
if command -v npm >/dev/null 2>&1; then
  mkdir -p "$ROOTFS/root" "$ROOTFS/etc/ssl"
  registry=$(npm config get registry 2>/dev/null || true)
  cafile=$(npm config get cafile 2>/dev/null || true)
  [ -f "$cafile" ] || cafile=${NODE_EXTRA_CA_CERTS:-}
  {
    [ -n "$registry" ] && echo "registry=$registry"
    if [ -n "$cafile" ] && [ -f "$cafile" ]; then
      cp -L "$cafile" "$ROOTFS/etc/ssl/host-npm-ca.crt" && echo "cafile=/etc/ssl/host-npm-ca.crt"
    fi
  } >"$ROOTFS/root/.npmrc"
fi
# The root a mount point of its own, as on a real machine: containers/storage makes "/"
# private (a remount) when it unpacks image layers, which fails where "/" is only a folder.
bind "$ROOTFS" "$ROOTFS"
bind /proc "$ROOTFS/proc"
bind /sys "$ROOTFS/sys"
# /dev with its submounts (pts, shm); rslave so that nothing done inside reaches the host's.
mkdir -p "$ROOTFS/dev"
mount --rbind /dev "$ROOTFS/dev"
mount --make-rslave "$ROOTFS/dev"
MOUNTS+=("$ROOTFS/dev")

in_root() {  # in_root LOG CMD...: a login-like clean environment inside the chroot
  # shellcheck disable=SC2086  # FRESH_ENV is a list of words
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 STORAGE_DRIVER=vfs ${FRESH_ENV:-} \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -lc "$2" >"$1" 2>&1
}

SUMMARY=()
status=0
for pass in $PASSES; do
  if [ "$pass" = cuda ]; then
    cuda=$(readlink -f "${CUDA_HOME:-/usr/local/cuda}")
    [ -x "$cuda/bin/nvcc" ] || { echo "fresh-machine-check: no nvcc under $cuda" >&2; exit 2; }
    bind "$cuda" "$ROOTFS$cuda"
    ln -sfn "$(basename "$cuda")" "$ROOTFS/usr/local/cuda"
    echo "== pass cuda: $cuda mounted, /usr/local/cuda -> $(basename "$cuda")"
  else
    rm -f "$ROOTFS/usr/local/cuda"
    echo "== pass nocuda: no CUDA toolkit in the root"
  fi
  src=/root/turbovid-$pass
  rm -rf "$ROOTFS$src"
  git clone -q --no-hardlinks "$REPO" "$ROOTFS$src"
  rev=$(git -C "$ROOTFS$src" rev-parse --short HEAD)
  echo "   clone of $rev"
  for step in demo test; do
    s=$(date +%s)
    if in_root "$LOGS/$pass-$step.log" "cd $src && ./scripts/$step.sh"; then r=PASS; else r=FAIL; fi
    SUMMARY+=("$pass ./scripts/$step.sh at $rev: $r in $(( $(date +%s) - s ))s")
    [ "$r" = PASS ] || status=1
    echo "   ${SUMMARY[-1]}"
    grep -h -E "tests passed|tests failed|^CUDA:|build took" "$LOGS/$pass-$step.log" | sed 's/^/      /' || true
    [ "$r" = PASS ] || tail -15 "$LOGS/$pass-$step.log" | sed 's/^/      | /'
  done
done

echo "== fresh-machine check, $(date -u +%F)"
printf '   %s\n' "${SUMMARY[@]}"
exit $status
exit $status
