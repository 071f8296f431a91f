#!/usr/bin/env bash
# Makes a Debian 12 base image without any container registry: debootstrap (minbase variant) of
# bookworm with the given packages, trimmed (manuals, docs other than copyright files, locales,
# apt's lists and caches), packed as a tarball and imported with `podman import`. The tarball is
# cached outside the build tree, keyed by this script and the package list, so a CI run debootstraps
# only when either changed. Prints the image reference (localhost/turbovid-base-NAME:KEY).
#   deploy/docker/make-base.sh NAME PACKAGES_FILE
#   env TV_IMAGE_CACHE  cache folder (default /var/cache/turbovid/images)
# Needs root, debootstrap, podman, and the host's Debian mirror (read from apt's sources, the same
# way apt reaches it); only a cache miss touches the mirror.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: make-base.sh NAME PACKAGES_FILE" >&2; exit 2; }
NAME=$1
PACKAGES=$(grep -v '^#' "$2" | tr -s ' \n' '\n' | sed '/^$/d' | sort -u)
SUITE=bookworm
CACHE=${TV_IMAGE_CACHE:-/var/cache/turbovid/images}
KEY=$( (cat "$0"; echo "$SUITE"; echo "$PACKAGES") | sha256sum | cut -c1-16)
IMAGE=localhost/turbovid-base-$NAME:$KEY
TAR=$CACHE/base-$NAME-$KEY.tar

if podman image exists "$IMAGE"; then
  echo "$IMAGE"
  exit 0
fi

# The host's Debian mirror for the suite: the first source that lists bookworm (one-line
# sources.list entries or deb822 .sources stanzas), security archives aside.
host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '$1 == "deb" && $0 ~ (" " s " ") && $0 !~ /security/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
      $0 ~ ("Suites:[^\n]*" s "( |$|\n)") && !/security/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, a, " "); print a[2]; exit } }' "$f"
  done
}

if [ ! -s "$TAR" ]; then
  mirror=$(host_mirror | head -1)
  [ -n "$mirror" ] || { echo "make-base: no $SUITE source in apt's sources" >&2; exit 1; }
  work=$(mktemp -d /var/tmp/tv-base.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  echo "make-base: debootstrap $SUITE minbase + $(echo $PACKAGES | wc -w) packages" >&2
  debootstrap --variant=minbase --include="$(echo $PACKAGES | tr ' ' ',')" "$SUITE" "$work/root" \
    "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  root=$work/root
  # What a runtime image never reads. Copyright files stay (the images carry their licences).
  rm -rf "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale \
    "$root"/usr/share/lintian "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/* "$root"/tmp/*
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  mkdir -p "$CACHE"
  tar --numeric-owner -C "$root" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
  # Older keys of this base are of no further use.
  find "$CACHE" -maxdepth 1 -name "base-$NAME-*.tar" ! -name "$(basename "$TAR")" -delete
fi
podman import --quiet --change 'CMD ["/bin/bash"]' "$TAR" "$IMAGE" >/dev/null
echo "$IMAGE"
