#!/usr/bin/env bash
# Debian 13 full stack, labrig against a plain install, in one run (printed, never asserted).
# Two fresh Debian 13 hosts of one local fleet, provisioned one after the other so that each has
# the machine to itself:
#   - node1 by `make provision` with the e2e fleet's full-stack Debian 13 profile (profiles.yml,
#     node4): the release's own driver 550 built by DKMS, the CUDA 11.8 runtime from the cu11 wheels,
#     cuDNN 8 and NCCL from their wheels, CPython 3.11.2 built from Debian 12's source package,
#     mxnet-cu112 in a venv of it;
#   - node2 by hand over SSH, the same packages a plain way: the archive's missing components added,
#     `apt-get install` of the driver and the interpreter's build libraries, CPython 3.11.2 from the
#     same upstream tarball built with the same configure flags (no Debian patches), a venv and
#     `pip install` of the same locked wheels from the wheelhouse, their libraries registered with
#     the dynamic linker.
# Prints each wall time and labrig / plain (goal <= 1.15). Needs root (it boots a fleet). Honours
# LABRIG_FLEET (default bench13), LABRIG_FLEET_SUBNET (default 10.203.8.0/24), LABRIG_FLEET_CACHE.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fleet_sh=$repo/tests/fleet/fleet.sh
export LABRIG_FLEET=${LABRIG_FLEET:-bench13}
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.8.0/24}
export LABRIG_FLEET_CACHE=${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}
export LABRIG_FLEET_HOSTS=2
export LABRIG_FLEET_RELEASES=node1=trixie,node2=trixie
results=$(mktemp -d /tmp/labrig-bench-debian13.XXXXXX)
wheels=$LABRIG_FLEET_CACHE/wheels
sources=$LABRIG_FLEET_CACHE/sources

((EUID == 0)) || {
  echo "bench-debian13: needs root (it boots a local fleet)" >&2
  exit 1
}
trap '"$fleet_sh" down >/dev/null 2>&1 || true' EXIT INT TERM
"$fleet_sh" down >/dev/null
"$repo/tests/fleet/prefetch-wheels.sh" >&2
"$repo/tests/fleet/fetch-python-source.sh" >&2

fleet_inventory=$("$fleet_sh" up | tail -n 1)
ssh_options=(-i "/run/labrig-fleet/$LABRIG_FLEET/id_ed25519" -o BatchMode=yes
  -o "UserKnownHostsFile=/run/labrig-fleet/$LABRIG_FLEET/known_hosts" -o StrictHostKeyChecking=yes)
address_of() {
  awk -v h="$1" '$1 == h { sub("ansible_host=", "", $2); print $2; exit }' "$fleet_inventory"
}

# Wall seconds of a command, its output appended to a log; the log's tail when it fails.
timed() {
  local log=$1 started status=0
  shift
  started=$EPOCHREALTIME
  "$@" >>"$log" 2>&1 || status=$?
  if ((status != 0)); then
    echo "bench-debian13: '$*' failed ($status); last lines of $log:" >&2
    tail -n 30 "$log" >&2
    return "$status"
  fi
  awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f\n", b - a }'
}

# labrig: node1 alone in its inventory, with the full-stack Debian 13 profile.
inventory=$results/labrig
mkdir -p "$inventory/host_vars"
awk '$1 == "node2" { next } { print }' "$fleet_inventory" >"$inventory/hosts.ini"
cudnn_wheel=$(find "$wheels" -maxdepth 1 -name 'nvidia_cudnn_cu11-8.*.whl' | sort | tail -n 1)
# An empty artifact cache of its own: the interpreter is built here, as the plain host builds it.
"$repo/.venv/bin/python" - "$repo/tests/fleet/profiles.yml" "$cudnn_wheel" "$results/artifacts" \
  >"$inventory/host_vars/node1.yml" <<'PY'
import hashlib, sys, yaml
profile = yaml.safe_load(open(sys.argv[1]))["node4"]
profile.update(python_runtime_build_host="node1", cudnn_wheel_file=sys.argv[2],
               cudnn_wheel_sha256=hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest(),
               python_runtime_artifact_cache=sys.argv[3])
print("---\n" + yaml.safe_dump(profile, sort_keys=True), end="")
PY
labrig_s=$(timed "$results/labrig.log" make -C "$repo" --no-print-directory provision \
  "INVENTORY=$inventory/hosts.ini")

# Plain: the same packages by hand on node2.
plain_address=$(address_of node2)
proxy=$(sed -n 's/^labrig_apt_proxy=//p' "$fleet_inventory")
pins=$("$repo/.venv/bin/python" - "$repo/roles/labrig/files/pip-lock.yml" <<'PY'
import sys, yaml
lock = yaml.safe_load(open(sys.argv[1]))
lines = lock["locks"]["cp311"]["mxnet-cu112"] + lock["files"]["cuda11"]
print(" ".join(line.split()[0] for line in lines))
PY
)
files=("$sources"/python3.11_3.11.2.orig.tar.gz "$cudnn_wheel"
  "$(find "$wheels" -maxdepth 1 -name 'nvidia_nccl_cu11-*.whl' | sort | tail -n 1)")
for pin in $pins; do
  name=$(echo "${pin%%==*}" | tr - _)
  files+=("$(find "$wheels" -maxdepth 1 -iname "$name-${pin#*==}-*.whl" | head -n 1)")
done
script=$results/plain.sh
{
  echo "set -euo pipefail"
  printf 'opts=(%s)\n' "$(printf '%q ' "${ssh_options[@]}")"
  printf 'ssh "${opts[@]}" %q mkdir -p /tmp/plain\n' "labrig@$plain_address"
  printf 'scp "${opts[@]}" -q %s %q:/tmp/plain/\n' "$(printf '%q ' "${files[@]}")" "labrig@$plain_address"
  printf 'ssh "${opts[@]}" %q bash -s <<%s\n' "labrig@$plain_address" "'HOST'"
  cat <<HOST
set -euo pipefail
echo 'Acquire::http::Proxy "$proxy";' | sudo tee /etc/apt/apt.conf.d/01proxy >/dev/null
sudo sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' \
  /etc/apt/sources.list.d/debian.sources
sudo apt-get update -q
sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-headers-amd64 nvidia-driver \
  nvidia-kernel-dkms firmware-nvidia-gsp build-essential libssl-dev zlib1g-dev libffi-dev \
  libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev uuid-dev libgdbm-dev libgomp1 libquadmath0
cd /tmp/plain && tar xzf python3.11_3.11.2.orig.tar.gz && cd Python-3.11.2
./configure -q --prefix=/opt/plain-python --enable-shared --with-ensurepip=install \
  --without-static-libpython LDFLAGS=-Wl,-rpath,/opt/plain-python/lib
make -s -j"\$(nproc)" && sudo make -s install
sudo /opt/plain-python/bin/python3.11 -m venv /opt/plain-venv
sudo /opt/plain-venv/bin/pip install -q --no-index --find-links /tmp/plain $pins \
  nvidia-cudnn-cu11 nvidia-nccl-cu11
ls -d /opt/plain-venv/lib/python3.11/site-packages/nvidia/*/lib | sudo tee /etc/ld.so.conf.d/plain-cuda.conf
sudo ldconfig
/opt/plain-venv/bin/python -c 'import mxnet; print(mxnet.__version__)'
HOST
  echo "HOST"
} >"$script"
plain_s=$(timed "$results/plain.log" bash "$script")

echo "Debian 13 full stack, $(date -u +%FT%TZ), $(nproc) cores, one host at a time"
echo "  labrig make provision (node1): $labrig_s s"
echo "  plain apt-get + CPython build + pip install (node2): $plain_s s"
awk -v l="$labrig_s" -v p="$plain_s" 'BEGIN { printf "labrig / plain (Debian 13 full stack): %.2f (goal <= 1.15)\n", l / p }'
echo "logs: $results"
