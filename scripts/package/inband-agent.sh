#!/bin/sh
# /usr/bin/inband-agent: runs the Node runtime bundled in /usr/lib/inband-agent
# on the bundled app, so the image needs neither Node nor npm of its own.
#
# Paths are found from this file's own location, so the same launcher works
# at / in the booted ramdisk and inside an unpacked image tree (DIR/usr/bin/…).
# Only shell built-ins are used before the exec: a minimal PATH (or none) is fine.
self=$0
if [ -L "$self" ]; then
  # A symlink to the launcher (e.g. /usr/local/bin/inband-agent): follow it.
  self=$(readlink -f "$self") || { echo "inband-agent: cannot resolve $0" >&2; exit 127; }
fi
case $self in
  */*) bindir=${self%/*} ;;
  *) bindir=. ;;
esac
lib=$(cd "$bindir/../lib/inband-agent" 2>/dev/null && pwd -P) || {
  echo "inband-agent: $bindir/../lib/inband-agent is missing (install with install.sh from the release tarball)" >&2
  exit 127
}
# The native /dev/ipmi0 addon of this release (ipmi-kcs/kcs-native.ts reads it);
# an explicit INBAND_AGENT_ADDON from the environment still wins.
: "${INBAND_AGENT_ADDON:=$lib/app/build/Release/ipmi_kcs.node}"
export INBAND_AGENT_ADDON
exec "$lib/bin/node" "$lib/app/bin/inband-agent.js" "$@"
