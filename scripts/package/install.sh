#!/bin/sh
# Installs inband-agent from its release tarball into a root filesystem tree:
# a ramdisk image being built (diskimage-builder's $TARGET_ROOT, an mkosi
# tree, an initramfs staging dir) or / itself.
#
#   ./install.sh [--root DIR] [--enable] [--force-config]
#
#   --root DIR       the tree to install into (default /)
#   --enable         start the agent at boot: multi-user.target.wants symlink,
#                    exactly what `systemctl --root=DIR enable` would create
#   --force-config   replace existing /etc/default/inband-agent and
#                    /etc/inband-agent/agent.json (kept by default: they are the
#                    image builder's to edit)
#
# Lays out:
#   /usr/lib/inband-agent/bin/node                   Node runtime (this release's)
#   /usr/lib/inband-agent/app/                       compiled agent, production node_modules,
#                                                    build/Release/ipmi_kcs.node (native addon)
#   /usr/bin/inband-agent                            launcher (sets INBAND_AGENT_ADDON)
#   /usr/lib/systemd/system/inband-agent.service
#   /usr/lib/modules-load.d/inband-agent.conf        ipmi_si, ipmi_devintf, ...
#   /etc/default/inband-agent                        environment (example, commented)
#   /etc/inband-agent/agent.json                     config file named by the unit's ExecStart
#   /usr/share/doc/inband-agent/                     README, licences
#
# Needs only a POSIX shell, cp, mkdir, ln, rm and chmod: no network, no npm, no Node.
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '6,/^# Lays out:/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

root=/
enable=0
force_config=0
while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --enable) enable=1; shift ;;
    --force-config) force_config=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd -P)
src=$here/root
[ -x "$src/usr/lib/inband-agent/bin/node" ] && [ -x "$src/usr/bin/inband-agent" ] \
  || die "$src is not an unpacked inband-agent release (run install.sh from the unpacked tarball)"
[ -n "$root" ] || die "--root is empty"
mkdir -p "$root"
root=$(cd "$root" && pwd -P)
[ -w "$root" ] || die "$root is not writable"

# Binaries, app and units belong to the package: replace them whole, so files
# of an older release never linger next to the new ones.
rm -rf "$root/usr/lib/inband-agent"
mkdir -p "$root/usr/lib" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/usr/lib/modules-load.d" \
  "$root/usr/share/doc"
cp -pR "$src/usr/lib/inband-agent" "$root/usr/lib/inband-agent"
cp -p "$src/usr/bin/inband-agent" "$root/usr/bin/inband-agent"
cp -p "$src/usr/lib/systemd/system/inband-agent.service" "$root/usr/lib/systemd/system/inband-agent.service"
cp -p "$src/usr/lib/modules-load.d/inband-agent.conf" "$root/usr/lib/modules-load.d/inband-agent.conf"
rm -rf "$root/usr/share/doc/inband-agent"
cp -pR "$src/usr/share/doc/inband-agent" "$root/usr/share/doc/inband-agent"

# Configuration belongs to the image builder: keep what is there.
install_config() { # SRC DEST MODE
  if [ -e "$2" ] && [ $force_config = 0 ]; then
    echo "install.sh: kept the existing ${2#"$root"} (--force-config replaces it)"
    return 0
  fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2"
  chmod "$3" "$2"
}
# 0600, both: an operator may add the agent token to either (INBAND_AGENT_AGENT_TOKEN=,
# agent_token), and the unit reads them as root.
install_config "$src/etc/default/inband-agent" "$root/etc/default/inband-agent" 0600
mkdir -p "$root/etc/inband-agent"
chmod 0700 "$root/etc/inband-agent"
install_config "$src/etc/inband-agent/agent.json" "$root/etc/inband-agent/agent.json" 0600

# Packaged files are root's, whoever unpacked the tarball (tar as a user keeps
# the user's uid; cp -p copies it on).
if [ "$(id -u)" = 0 ]; then
  chown -R 0:0 "$root/usr/lib/inband-agent" "$root/usr/bin/inband-agent" \
    "$root/usr/lib/systemd/system/inband-agent.service" "$root/usr/lib/modules-load.d/inband-agent.conf" \
    "$root/usr/share/doc/inband-agent" "$root/etc/inband-agent"
fi

if [ $enable = 1 ]; then
  # The link systemctl enable makes for WantedBy=multi-user.target; absolute
  # target, resolved inside the booted root.
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sfn /usr/lib/systemd/system/inband-agent.service "$root/etc/systemd/system/multi-user.target.wants/inband-agent.service"
fi

# The bundled Node is linked against glibc: warn (only) when the tree has no
# glibc loader, e.g. a musl-based image, where the agent could not start.
arch=$(cat "$here/ARCH" 2>/dev/null || echo unknown)
case $arch in
  x64) loader=ld-linux-x86-64.so.2 ;;
  arm64) loader=ld-linux-aarch64.so.1 ;;
  *) loader= ;;
esac
if [ -n "$loader" ] && [ "$root" != / ]; then
  found=0
  for d in lib64 usr/lib64 lib usr/lib lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu; do
    [ -e "$root/$d/$loader" ] && found=1 && break
  done
  [ $found = 1 ] || echo "install.sh: warning: no $loader under $root yet: the bundled Node needs glibc in the image" >&2
fi

echo "install.sh: installed inband-agent $(cat "$here/VERSION" 2>/dev/null || echo '?') into $root$([ $enable = 1 ] && echo ' (enabled)' || true)"
