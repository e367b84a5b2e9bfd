#!/usr/bin/env bash
# One-step set-up on a fresh Debian machine (root or sudo), used by the README's
# two commands and by .ci/run:
#
#   scripts/setup.sh          what running the agent needs: npm ci (builds the
#                             native /dev/ipmi0 addon, then the TypeScript)
#   scripts/setup.sh --test   plus what the tests need: ipmi_sim (openipmi),
#                             ipmitool, qemu + busybox for the real-kernel test,
#                             systemd-analyze, and Debian's Ironic (with
#                             Keystone and the openstack CLI) for the
#                             end-to-end tests
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

. "$(dirname "$0")/lib/apt.sh"

if [ $want_test = 1 ]; then
  t0=$(date +%s)
  # ipmi_sim + ipmitool: the real BMC emulator and the out-of-band proof;
  # qemu + busybox: the guest with a real kernel /dev/ipmi0 (test/qemu);
  # systemd + strace: verifying the unit and its system-call filter; systemd is
  # also PID 1 of the qemu guest that kills the agent under the unit (test/qemu).
  apt_install openipmi ipmitool qemu-system-x86 busybox-static systemd strace
  # Debian's Ironic (and inspector) for the end-to-end stage (test/ironic),
  # Barbican for the external secret store (test/conductor-side).
  scripts/install-ironic.sh
  scripts/install-barbican.sh
  # Keystone and the openstack CLI for the ironic-driver passthru e2e (test/conductor-side/passthru-keystone-*).
  scripts/install-keystone.sh
  echo "setup: test packages ready in $(( $(date +%s) - t0 )) s"
fi

# npm ci runs the root install script: node-gyp builds the native addon
# (a failure is reported loudly but does not stop the install: the agent then
# runs on another backend and says why).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ -n "${CI:-}" ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
echo "setup: done"
