#!/usr/bin/env bash
# Fetches a Debian kernel for the qemu guest of the real-kernel tests
# (test/qemu/) without installing it: `apt-get download` + `dpkg-deb -x`, then
# keeps only vmlinuz and the modules the guest loads (IPMI, virtio, 9p).
# Installing linux-image-* would run update-initramfs and write to /boot.
#
#   scripts/fetch-kernel.sh            prints the pruned kernel tree's path (last line)
#
# Which kernel: the one Debian's `linux-image-amd64` meta package depends on
# (the distribution's default kernel, what a deploy ramdisk built here carries),
# resolved with apt-cache on every run so a kernel update is picked up.
#   INBAND_KERNEL_PKG=linux-image-…-amd64   a specific package
#   INBAND_KERNEL_PKG=newest                the newest linux-image-6.*-amd64 apt knows
# Cache: $INBAND_CACHE_DIR (default <project>/.cache)/qemu/kernel/<package>_<version>/,
# about 10 MB; the .deb (about 70 MB) is deleted after extraction. Safe to run
# concurrently (flock). Offline, the newest cached tree is used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${INBAND_CACHE_DIR:-$root/.cache}/qemu/kernel
mkdir -p "$cache"

# What is kept of the package; bump LAYOUT when the list changes. Each layout
# has its own directory (…_l<LAYOUT>), so checkouts of different versions
# sharing one cache never replace each other's tree under a running test.
LAYOUT=3

log() { echo "fetch-kernel: $*" >&2; }

newest_cached() {
  # shellcheck disable=SC2012
  local d
  for d in "$cache"/linux-image-*/; do
    [ "$(cat "$d/.complete" 2>/dev/null)" = "$LAYOUT" ] && echo "${d%/}"
  done | sort -V | tail -1
}

pick_package() {
  local want=${INBAND_KERNEL_PKG:-default}
  case "$want" in
    default)
      apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ { print $2; exit }' ;;
    newest)
      # Flavour "amd64" only: -cloud lacks nothing we need but is not what ramdisks use; -rt, -dbg, -unsigned are not kernels to boot.
      apt-cache search --names-only '^linux-image-6\.[0-9.]+[-+][^ ]*-amd64$' 2>/dev/null \
        | awk '{ print $1 }' | grep -Ev -- '-(cloud|rt)-amd64$|-dbg$|-unsigned$' | sort -V | tail -1 ;;
    *) echo "$want" ;;
  esac
}

# Without apt (offline, no lists), a kernel cached earlier will do, unless a
# specific package was asked for.
use_cached_or_fail() {
  local why=$1 rc=$2 dir
  case "${INBAND_KERNEL_PKG:-default}" in
    default|newest) dir=$(newest_cached) ;;
    *) dir="" ;;
  esac
  if [ -n "$dir" ]; then
    log "$why; using the cached $(basename "$dir")"
    echo "$dir"
    exit 0
  fi
  log "$why"
  exit "$rc"
}

pkg=$(pick_package || true)
[ -n "$pkg" ] || use_cached_or_fail "cannot resolve a kernel package with apt-cache (is the Debian archive configured? try: apt-get update)" 3
version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  use_cached_or_fail "no candidate version for $pkg (try: apt-get update)" 3
fi
target="$cache/${pkg}_${version//[:~]/_}_l$LAYOUT"

# One fetch at a time per cache: concurrent test files may all ask at once.
exec 9>"$cache/.lock"
flock 9

if [ "$(cat "$target/.complete" 2>/dev/null)" = "$LAYOUT" ]; then
  echo "$target"
  exit 0
fi

t0=$(date +%s%N)
work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "downloading $pkg $version"
# As root, apt-get downloads as the _apt user, which cannot enter a project
# under a private home; the package is verified against the signed index anyway.
sandbox=()
[ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
if ! (cd "$work" && apt-get download -q=2 "${sandbox[@]}" "$pkg=$version" >&2); then
  use_cached_or_fail "apt-get download $pkg=$version failed (network or stale package lists? try: apt-get update)" 4
fi
t1=$(date +%s%N)
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/full"
kv=$(ls "$work/full/lib/modules")
k="lib/modules/$kv/kernel"
mkdir "$work/root"
# vmlinuz, its config (for the record) and only the modules the guest uses:
# IPMI, virtio + 9p (host root, share), virtio-net (forwarded ports), overlayfs
# (the systemd guest's writable root over the read-only host root).
keep=("boot/vmlinuz-$kv" "boot/config-$kv" "$k/drivers/char/ipmi" "$k/drivers/virtio" "$k/net/9p" "$k/fs/9p" "$k/fs/overlayfs")
for d in "$k/fs/netfs" "$k/fs/fscache"; do [ -d "$work/full/$d" ] && keep+=("$d"); done
for m in drivers/net/virtio_net drivers/net/net_failover net/core/failover; do
  for f in "$work/full/$k/$m".ko*; do [ -f "$f" ] && keep+=("${f#"$work/full/"}"); done
done
(cd "$work/full" && tar cf - "${keep[@]}") | (cd "$work/root" && tar xf -)
printf '%s\n' "$pkg" "$version" "$kv" > "$work/root/.kernel"
echo "$LAYOUT" > "$work/root/.complete"
rm -rf "$target"
mv "$work/root" "$target"
t2=$(date +%s%N)
log "$pkg $version: download $(( (t1 - t0) / 1000000 )) ms, extract+prune $(( (t2 - t1) / 1000000 )) ms, $(du -sh "$target" | cut -f1) kept"
echo "$target"
