#!/bin/bash
# CI install step for the Keystone-authenticated Ironic end-to-end test
# (test/conductor-side/*keystone*, INBAND_TEST_IRONIC=1) and the ironic-driver package.
#
# Debian's *library* packages only, as for Ironic (scripts/install-ironic.sh):
#  - python3-keystone: Keystone's code; test/harness/keystone.ts runs its WSGI app
#    (keystone.server.wsgi.initialize_public_application) on a loopback port with
#    sqlite, so neither Apache nor the `keystone` service package (dbconfig, apache2)
#    is needed;
#  - python3-openstackclient + python3-ironicclient: the real `openstack baremetal` CLI
#    the e2e drives (no /usr/bin/openstack in the library package: the test runs
#    `/usr/bin/python3 -m openstackclient.shell`);
#  - python3-cryptography (already a dependency of python3-ironic): the sealing in
#    ironic-driver/inband_ironic.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
apt_install python3-keystone python3-openstackclient python3-ironicclient python3-cryptography
/usr/bin/python3 -c "import keystone.server.wsgi, openstackclient.shell, ironicclient, cryptography"
echo "install-keystone: apt-get update ${APT_UPDATE_S} s, install ${APT_INSTALL_S} s;" \
  "python3-keystone $(dpkg-query -W -f='${Version}' python3-keystone)"
