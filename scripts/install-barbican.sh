#!/bin/bash
# CI install step for the secret-store contract test against a real Barbican
# (test/conductor-side/, test/harness/barbican.ts).
#
# Installs Debian's *library* package python3-barbican (Barbican 15.0 on bookworm) only:
# the barbican-api service package pulls in dbconfig-common and uwsgi and configures a
# system service. test/harness/barbican.ts starts the API itself on a free loopback port
# with sqlite and the unauthenticated-context pipeline, through a small wsgiref shim run
# by /usr/bin/python3, so nothing is written under /etc.
#
# Prints how long apt took, so CI can decide which stage runs it.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
apt_install python3-barbican
# Fail here rather than in the test if the library is not importable by the system Python.
/usr/bin/python3 -c "import barbican.api.app, barbican.common.config, paste.deploy"
echo "install-barbican: apt-get update ${APT_UPDATE_S} s, install ${APT_INSTALL_S} s;" \
  "python3-barbican $(dpkg-query -W -f='${Version}' python3-barbican)"
