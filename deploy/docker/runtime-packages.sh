#!/bin/sh
# Prints, one per line and sorted, the Debian packages that own the shared libraries the given
# binaries link directly (their DT_NEEDED entries, resolved as the loader would). The images
# install exactly these (their own dependencies come with them). Run where the binaries were
# built (the same distribution as the image's base).
#   deploy/docker/runtime-packages.sh BINARY...
set -eu
[ $# -gt 0 ] || { echo "usage: runtime-packages.sh BINARY..." >&2; exit 2; }
owners=""
for bin in "$@"; do
  for lib in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
    case "$lib" in ld-linux*) continue ;; esac  # the loader: libc6's, listed through libc.so.6
    path=$(ldd "$bin" | awk -v l="$lib" '$1 == l && $3 ~ /^\// { print $3; exit }')
    [ -n "$path" ] || { echo "runtime-packages: $bin: $lib not found by ldd" >&2; exit 1; }
    owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null ||
            dpkg -S "/usr$(readlink -f "$path")" 2>/dev/null || true)
    [ -n "$owner" ] || { echo "runtime-packages: $bin: no package owns $path" >&2; exit 1; }
    owners="$owners ${owner%%:*}"
  done
done
printf '%s\n' $owners | sort -u
