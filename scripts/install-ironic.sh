#!/bin/bash
# CI install step for the real-Ironic end-to-end test (test/ironic/, INBAND_TEST_IRONIC=1).
#
# Installs Debian's *library* packages only: python3-ironic ships the Python code without
# /usr/bin entry points, systemd units or dbconfig postinst scripts (the ironic-api /
# ironic-conductor service packages would pull in ~31 more packages and configure
# services). test/harness/ironic.ts starts Ironic standalone through a tiny entry-point
# shim with /usr/bin/python3, so nothing is written under /etc.
#
# python3-ironic-inspector (+8 small packages) is the legacy inspection callback the
# discovery test posts the inventory to.
#
# ipmitool is what Ironic's `ipmi` hardware type runs against the BMC; ipmi_sim (openipmi)
# is the BMC the test points it at.
#
# Prints how long apt took, so CI can decide which stage runs it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
t0=$(date +%s)
if [ "${INBAND_APT_UPDATE:-1}" = 1 ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
t1=$(date +%s)
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  python3-ironic python3-ironic-inspector ipmitool openipmi
t2=$(date +%s)
# Fail here rather than in the test if the library is not importable by the system Python.
# Two processes: both register oslo.config options such as "host" on the global CONF.
/usr/bin/python3 -c "import ironic.cmd.singleprocess, ironic.cmd.dbsync"
/usr/bin/python3 -c "import ironic_inspector.cmd.all"
echo "install-ironic: apt-get update $((t1 - t0)) s, install $((t2 - t1)) s;" \
  "python3-ironic $(dpkg-query -W -f='${Version}' python3-ironic)"
