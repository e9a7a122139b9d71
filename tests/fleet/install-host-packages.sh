#!/usr/bin/env bash
# Debian packages the controller needs: the fleet harness, the report tests, pci.ids (preflight
# names GPUs from it) and prometheus (promtool checks the monitoring config and alert rules; the
# fleet test runs its server against the fleet).
# Called by `make setup`. Fast no-op when everything is already installed.
set -euo pipefail

packages=(debootstrap systemd-container apt-cacher-ng iproute2 zstd openssh-client chromium pci.ids prometheus gpg)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
  echo "install-host-packages: all present (${packages[*]})"
  exit 0
fi

if ((EUID != 0)); then
  echo "install-host-packages: not root; missing Debian packages: ${missing[*]}" >&2
  echo "install-host-packages: run as root: apt-get install ${missing[*]}" >&2
  # CI must not go on to a fleet stage that would then skip for a reason nobody sees.
  [[ ${CI:-} == true ]] && exit 1
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Other jobs on a shared machine may hold the dpkg lock for a while: wait rather than fail.
apt_get=(apt-get -o DPkg::Lock::Timeout=600)
# A fresh machine has no package lists; an old list may name versions the mirror dropped.
if ! "${apt_get[@]}" install -y --no-install-recommends "${missing[@]}"; then
  "${apt_get[@]}" update
  "${apt_get[@]}" install -y --no-install-recommends "${missing[@]}"
fi

# The packaged apt-cacher-ng and prometheus services listen on every address; the fleet starts its
# own instances bound to the bridge address only, so the packaged ones must not run (nor hold
# ports 3142 and 9090).
for service in apt-cacher-ng prometheus; do
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl disable --now "$service.service" >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/$service ]]; then
    "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    update-rc.d "$service" disable >/dev/null 2>&1 || true
  fi
done
echo "install-host-packages: installed ${missing[*]}"
