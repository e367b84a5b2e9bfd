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
. "$(dirname "$0")/lib/apt.sh"
apt_install python3-ironic python3-ironic-inspector ipmitool openipmi
# Fail here rather than in the test if the library is not importable by the system Python.
# Two processes: both register oslo.config options such as "host" on the global CONF.
/usr/bin/python3 -c "import ironic.cmd.singleprocess, ironic.cmd.dbsync"
/usr/bin/python3 -c "import ironic_inspector.cmd.all"
echo "install-ironic: apt-get update ${APT_UPDATE_S} s, install ${APT_INSTALL_S} s;" \
  "python3-ironic $(dpkg-query -W -f='${Version}' python3-ironic)"
