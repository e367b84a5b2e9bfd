#!/bin/sh
# Installs inband_ironic into the Python that runs Debian's Ironic (python3-ironic),
# from this checkout, without the Python package index:
#
#   sudo ironic-driver/install.sh                 # into /usr/local/lib/python3.X/dist-packages
#   ironic-driver/install.sh --target DIR         # into DIR (put DIR on Ironic's PYTHONPATH)
#   sudo ironic-driver/install.sh --uninstall
#
# It copies the package and writes a .dist-info with the entry points Ironic's
# driver loading (stevedore, importlib.metadata) reads: ironic.hardware.types
# `ipmi-inband` and ironic.hardware.interfaces.vendor `inband-bmc` (the same as
# pyproject.toml, which `pip install` would use). Always /usr/bin/python3: a
# python3 earlier on PATH (pyenv) does not see Debian's dist-packages.
# Then restart the conductor (see docs/ironic-driver.md for ironic.conf).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
target=$(/usr/bin/python3 -c 'import site; print([p for p in site.getsitepackages() if p.startswith("/usr/local/")][0])')
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/pyproject.toml")
info="$target/inband_ironic-$version.dist-info"
rm -rf "$target/inband_ironic" "$target"/inband_ironic-*.dist-info
if [ "$action" = uninstall ]; then echo "inband_ironic removed from $target"; exit 0; fi
/usr/bin/python3 -c 'import ironic.drivers.ipmi, cryptography' || {
  echo "install.sh: /usr/bin/python3 cannot import ironic and cryptography (apt-get install python3-ironic)" >&2; exit 1; }
mkdir -p "$target" "$info"
cp -R "$here/inband_ironic" "$target/inband_ironic"
find "$target/inband_ironic" -name __pycache__ -prune -exec rm -rf {} +
cat > "$info/METADATA" <<META
Metadata-Version: 2.1
Name: inband-ironic
Version: $version
Summary: Ironic hardware type ipmi-inband: set_bmc_credentials vendor passthru through inband-agent
META
cat > "$info/entry_points.txt" <<EP
[ironic.hardware.interfaces.vendor]
inband-bmc = inband_ironic.vendor:InbandBMCVendor

[ironic.hardware.types]
ipmi-inband = inband_ironic.hardware:InbandIPMIHardware
EP
echo inband_ironic > "$info/top_level.txt"
echo inband-agent-checkout > "$info/INSTALLER"
(cd "$target" && find inband_ironic "$(basename "$info")" -type f | sed 's/$/,,/') > "$info/RECORD"
PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -c '
import sys
from importlib.metadata import entry_points
eps = entry_points()
hw = [e for e in eps.select(group="ironic.hardware.types") if e.name == "ipmi-inband"]
vi = [e for e in eps.select(group="ironic.hardware.interfaces.vendor") if e.name == "inband-bmc"]
assert hw and vi, "entry points not visible"
hw[0].load(); vi[0].load()
print("inband_ironic %s installed in %s: hardware type ipmi-inband, vendor interface inband-bmc" % (sys.argv[1], sys.argv[2]))
' "$version" "$target"
