# Sourced by scripts/setup.sh and scripts/install-*.sh: installs Debian
# packages as root or through sudo, skipping those already installed.
#
#   apt_install PKG...
#
# The package lists are refreshed before the first install that needs one:
# always in CI (a fresh machine's lists may be stale or empty), otherwise once
# per machine (stamp /var/lib/apt/periodic/inband-agent-updated), or never with
# INBAND_APT_UPDATE=0. APT_UPDATE_S and APT_INSTALL_S add up the seconds spent,
# for the scripts' timing lines.
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATE_S=0
APT_INSTALL_S=0
_apt_stamp=/var/lib/apt/periodic/inband-agent-updated

apt_install() {
  local missing=() p t0 t1 t2
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "apt: installing Debian packages: ${missing[*]}" >&2
  t0=$(date +%s)
  if [ "${INBAND_APT_UPDATE:-auto}" != 0 ] && { [ ! -f "$_apt_stamp" ] || [ -n "${CI:-}" ] || [ "${INBAND_APT_UPDATE:-auto}" = 1 ]; } && [ -z "${_APT_UPDATED:-}" ]; then
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO mkdir -p "$(dirname "$_apt_stamp")" && $SUDO touch "$_apt_stamp"
    # Once per process tree: setup.sh exports it to the install scripts it runs.
    export _APT_UPDATED=1
  fi
  t1=$(date +%s)
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  t2=$(date +%s)
  APT_UPDATE_S=$((APT_UPDATE_S + t1 - t0))
  APT_INSTALL_S=$((APT_INSTALL_S + t2 - t1))
}
