#!/usr/bin/env bash
# Fills the fleet's apt cache with the heavy GPU-workstation packages, so later fleet runs on
# this machine pull them from the cache, and records what that cost: download time vs dpkg time,
# bytes in the cache, disk used by one host. Brings up its own one-host fleet and takes it down.
# Results: $LABRIG_FLEET_CACHE/warm-cache.txt (also printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LABRIG_FLEET=${LABRIG_FLEET:-warm}
export LABRIG_FLEET_HOSTS=1
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.9.0/24}
cache=${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}
results=$cache/warm-cache.txt

packages=(
  nvidia-driver firmware-misc-nonfree nvidia-kernel-dkms linux-headers-amd64
  nvidia-cuda-toolkit intel-mkl libatlas-base-dev libopenblas-dev python3-venv
)

((EUID == 0)) || {
  echo "warm-cache: needs root" >&2
  exit 1
}
trap '"$here/fleet.sh" down' EXIT INT TERM
"$here/fleet.sh" up >/dev/null

in_guest() { "$here/fleet.sh" ssh node1 "$@"; }
cache_bytes() {
  mkdir -p "$cache/apt-cacher-ng"
  du -sb "$cache/apt-cacher-ng" | cut -f1
}

# Same components change the provisioning role makes on a real workstation.
in_guest "sudo sed -i 's/^Components: main\$/Components: main contrib non-free non-free-firmware/' \
  /etc/apt/sources.list.d/debian.sources && sudo apt-get update -q >/dev/null"

before=$(cache_bytes)
started=$SECONDS
in_guest "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --download-only ${packages[*]}" \
  >"$cache/warm-cache.download.log"
download_s=$((SECONDS - started))
download_bytes=$(in_guest "sudo du -sb /var/cache/apt/archives | cut -f1")

started=$SECONDS
in_guest "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${packages[*]}" \
  >"$cache/warm-cache.dpkg.log" 2>&1
dpkg_s=$((SECONDS - started))
dkms=$(in_guest "sudo dkms status" || true)
nvcc=$(in_guest "/usr/bin/nvcc --version | tail -n 2 | head -n 1" || true)
smi_rc=0
in_guest "nvidia-smi" >/dev/null 2>&1 || smi_rc=$?
in_guest "sudo apt-get clean"
layer_bytes=$(du -sb "$cache/layers/$LABRIG_FLEET/node1" | cut -f1)

{
  echo "warm-cache run $(date -u +%FT%TZ) on $(nproc) cores"
  echo "packages: ${packages[*]}"
  echo "download: ${download_s} s for $((download_bytes / 1048576)) MiB of .debs"
  echo "install (dpkg, incl. DKMS and initramfs): ${dpkg_s} s"
  echo "apt cache: $((before / 1048576)) MiB before, $(($(cache_bytes) / 1048576)) MiB after"
  echo "disk used by the host (its overlay layer, archives cleaned): $((layer_bytes / 1048576)) MiB"
  echo "dkms status: ${dkms:-none}"
  echo "nvcc: ${nvcc:-missing}"
  echo "nvidia-smi exit status: $smi_rc"
} | tee "$results"
