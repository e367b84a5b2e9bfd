#!/usr/bin/env bash
# Builds the qemu guest's initramfs for the real-kernel tests (test/qemu/):
# busybox-static, the Debian kernel's IPMI modules (real ipmi_si/ipmi_devintf
# drivers behind /dev/ipmi0) and the virtio/9p/virtio-net modules, plus an /init that
#   1. loads ipmi_msghandler -> ipmi_devintf -> ipmi_si (the .deb ships no
#      modules.dep, so the order is written here) and waits for /dev/ipmi0;
#   2. prints the kernel's IPMI lines (`dmesg | grep -i ipmi`) to the console;
#   3. with `inband.hostroot` on the kernel command line, mounts the host's /
#      (9p tag `hostroot`, read-only) at /host so host binaries (node, the
#      agent) run with `chroot /host …` against the guest's real /dev/ipmi0;
#   4. with `inband.net`, brings up eth0 (virtio-net, qemu user networking) as 10.0.2.15;
#   5. with `inband.share`, mounts the writable 9p tag `share` at /share (and,
#      with the host root, at /host/run/inband-share);
#   6. runs /share/.inband/guest.sh, prints `@@inband:exit <status>`, powers off;
#   or, with `inband.systemd` (and the host root), boots systemd as PID 1 instead:
#      the root is an overlayfs, a tmpfs upper over the read-only host root (so
#      /etc and /var are writable and the host stays untouched), with /run a
#      tmpfs that already holds the share at /run/inband-share; guest.sh runs
#      first with that root at /sysroot (to install units), then /init execs
#      switch_root into /lib/systemd/systemd. The units report `@@inband:exit`
#      and power off themselves (systemd.unit= on the kernel command line).
# Lines starting with `@@inband:` are the protocol test/harness/qemu.ts reads.
#
#   scripts/build-initramfs.sh KERNEL_TREE OUT.cpio.gz
# KERNEL_TREE is what scripts/fetch-kernel.sh prints. Needs busybox-static.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 KERNEL_TREE OUT.cpio.gz" >&2; exit 2; }
kroot=$(cd "$1" && pwd)
out=$2
busybox=${BUSYBOX:-/bin/busybox}
# (grep without -q reads all of --list: an early exit would SIGPIPE busybox and, under pipefail, fail the test at random)
if ! "$busybox" --list 2>/dev/null | grep -x cpio >/dev/null || ldd "$busybox" 2>/dev/null | grep "=>" >/dev/null; then
  echo "build-initramfs: $busybox is not a static busybox with cpio (Debian package busybox-static)" >&2
  exit 3
fi
kv=$(ls "$kroot/lib/modules" | head -1)
kmods="$kroot/lib/modules/$kv/kernel"

w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w"/{bin,sbin,dev,proc,sys,tmp,etc,host,share,lib/modules}
cp "$busybox" "$w/bin/busybox"

# Dependency order: each module after the ones it needs. Modules a kernel has
# built in (or lacks) are skipped; /init tolerates a missing file too.
ipmi_mods="ipmi_msghandler ipmi_devintf ipmi_si"
ninep_mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
net_mods="failover net_failover virtio_net"
overlay_mods="overlay"
have=()
for m in $ipmi_mods $ninep_mods $net_mods $overlay_mods; do
  f=$(find "$kmods" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -1)
  [ -n "$f" ] || continue
  case "$f" in
    *.xz)  xz -dc "$f" > "$w/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$w/lib/modules/$m.ko" ;;
    *.gz)  gzip -dc "$f" > "$w/lib/modules/$m.ko" ;;
    *)     cp "$f" "$w/lib/modules/$m.ko" ;;
  esac
  have+=("$m")
done
# The three IPMI drivers are the point of the guest: each must be a module here or built in.
for pair in ipmi_msghandler:IPMI_HANDLER ipmi_devintf:IPMI_DEVICE_INTERFACE ipmi_si:IPMI_SI; do
  m=${pair%%:*}
  [ -f "$w/lib/modules/$m.ko" ] || grep -qx "CONFIG_${pair#*:}=y" "$kroot"/boot/config-* \
    || { echo "build-initramfs: $m is neither a module under $kmods nor built in" >&2; exit 4; }
done
echo "$ipmi_mods" > "$w/etc/ipmi-modules"
echo "$ninep_mods" > "$w/etc/9p-modules"
echo "$net_mods" > "$w/etc/net-modules"
echo "$overlay_mods" > "$w/etc/overlay-modules"

cat > "$w/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
# Kernel messages would interleave with the protocol lines on ttyS0; the IPMI
# ones are printed below from dmesg instead.
dmesg -n 1
# The host answers requests (@@inband:ask) on the console, and an answer may
# be a secret: it must never be echoed into the console log.
stty -echo
up() { cut -d' ' -f1 /proc/uptime; }
echo "@@inband:userspace $(up)"
load() { [ -f "/lib/modules/$1.ko" ] || return 0; insmod "/lib/modules/$1.ko" $2 2>&1 | grep -v 'File exists' || true; }
for m in $(cat /etc/ipmi-modules); do load "$m"; done
i=0; while [ ! -e /dev/ipmi0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if [ -e /dev/ipmi0 ]; then
  echo "@@inband:ipmi-ready $(up) $(ls -l /dev/ipmi0)"
else
  echo "@@inband:ipmi-missing $(up)"
fi
dmesg | grep -i ipmi | sed 's/^/dmesg: /'
if grep -qE 'inband\.(hostroot|share)' /proc/cmdline; then
  for m in $(cat /etc/9p-modules); do load "$m"; done
fi
ip link set lo up
# "inband.net": qemu's user-mode network (slirp) with host port forwards; its fixed addresses.
if grep -q 'inband\.net' /proc/cmdline; then
  for m in $(cat /etc/net-modules); do load "$m"; done
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 \
    && echo "@@inband:net $(up) 10.0.2.15" || echo "@@inband:error network set-up failed"
fi
p9="trans=virtio,version=9p2000.L,msize=262144"
if grep -q 'inband\.share' /proc/cmdline; then
  mount -t 9p -o "$p9" share /share || echo "@@inband:error cannot mount the share"
fi
if grep -q 'inband\.systemd' /proc/cmdline && grep -q 'inband\.hostroot' /proc/cmdline; then
  # systemd as PID 1 on a writable root that leaves the host untouched: an
  # overlayfs whose upper layer is a tmpfs over the read-only host root.
  sysroot_up() {
    mount -t 9p -o "$p9,ro,cache=loose" hostroot /host || { echo "@@inband:error cannot mount the host root"; return 1; }
    for m in $(cat /etc/overlay-modules); do load "$m"; done
    mkdir -p /rw /sysroot && mount -t tmpfs -o mode=755 rw /rw && mkdir -p /rw/upper /rw/work \
      && mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work sysroot /sysroot \
      || { echo "@@inband:error cannot mount the overlay root"; return 1; }
    # /run mounted here is kept by systemd (it mounts API file systems only where none is).
    mount -t tmpfs -o mode=755,nosuid,nodev run /sysroot/run || return 1
    if grep -q ' /share ' /proc/mounts; then mkdir -p /sysroot/run/inband-share && mount -o bind /share /sysroot/run/inband-share; fi
    proj=$(sed -n 's/.*inband\.project=\([^ ]*\).*/\1/p' /proc/cmdline)
    if [ -n "$proj" ]; then
      mkdir -p "/sysroot$proj" && mount -t 9p -o "$p9,ro,cache=loose" project "/sysroot$proj" \
        || { echo "@@inband:error cannot mount the project at $proj"; return 1; }
    fi
    echo "@@inband:hostroot $(up)"
  }
  rc=127
  if sysroot_up; then
    if [ -f /share/.inband/guest.sh ]; then
      SYSROOT=/sysroot sh /share/.inband/guest.sh; rc=$?
    else
      echo "@@inband:error no guest script (/share/.inband/guest.sh)"
    fi
    if [ $rc -eq 0 ]; then
      # The host root may be a container's (/.dockerenv): systemd would then take
      # itself for a container's init and read its settings from its own argv,
      # not from the kernel command line (systemd.unit=). The guest is a VM.
      rm -f /sysroot/.dockerenv
      echo "@@inband:systemd $(up)"
      for d in dev proc sys; do mount --move "/$d" "/sysroot/$d"; done
      exec switch_root /sysroot /lib/systemd/systemd
    fi
  fi
  echo "@@inband:exit $rc $(up)"
  sync
  poweroff -f
fi
if grep -q 'inband\.hostroot' /proc/cmdline; then
  # cache=loose: the host root is read-only and does not change under a test, and
  # caching its pages cuts node's start in the guest from ~6 s to 2.4 s (0.3 s warm).
  if mount -t 9p -o "$p9,ro,cache=loose" hostroot /host; then
    mount -o bind /dev /host/dev && mount -t proc proc /host/proc && mount -t sysfs sys /host/sys \
      && mount -t tmpfs -o mode=755 run /host/run && mount -t tmpfs -o mode=1777 tmp /host/tmp
    if grep -q ' /share ' /proc/mounts; then mkdir -p /host/run/inband-share && mount -o bind /share /host/run/inband-share; fi
    # "inband.project=PATH": the project lives under a host directory the tmpfs
    # mounts above hide (a clone under /tmp, as CI may make): mount it again there.
    proj=$(sed -n 's/.*inband\.project=\([^ ]*\).*/\1/p' /proc/cmdline)
    if [ -n "$proj" ]; then
      mkdir -p "/host$proj" && mount -t 9p -o "$p9,ro,cache=loose" project "/host$proj" \
        || echo "@@inband:error cannot mount the project at $proj"
    fi
    echo "@@inband:hostroot $(up)"
  else
    echo "@@inband:error cannot mount the host root"
  fi
fi
rc=127
if [ -f /share/.inband/guest.sh ]; then
  sh /share/.inband/guest.sh; rc=$?
else
  echo "@@inband:error no guest script (/share/.inband/guest.sh)"
fi
echo "@@inband:exit $rc $(up)"
sync
poweroff -f
EOF
chmod +x "$w/init"
tmp="$out.tmp.$$"
(cd "$w" && find . | "$w/bin/busybox" cpio -o -H newc -R 0:0 2>/dev/null | gzip -1 > "$tmp")
mv "$tmp" "$out"
echo "build-initramfs: $out ($(du -h "$out" | cut -f1); modules: ${have[*]})" >&2
