#!/usr/bin/env bash
# `make demo`: labrig's main job, end to end, on a local Debian 12 host this machine boots itself:
# boot one host (systemd-nspawn, own network namespace, SSH with host keys), provision it with the
# CPU profile (OpenBLAS, MXNet's CPU wheel), verify it, render the fleet report, take the host down.
# KEEP=1 leaves the host up (tests/fleet/fleet.sh ssh node1, with LABRIG_FLEET=demo).
# The full output of every step goes to reports/demo.log; the terminal shows one line per step.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export LABRIG_FLEET=${LABRIG_FLEET:-demo}
export LABRIG_FLEET_HOSTS=1
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.9.0/24}
log=$repo/reports/demo.log
steps=5
started=$SECONDS

fail() {
  echo "demo: cannot run: $*" >&2
  exit 1
}

# Every reason the demo cannot run, as one line, before anything starts.
((EUID == 0)) || fail "needs root (network namespaces, overlay mounts, systemd-nspawn): sudo make demo"
[[ -x $repo/.venv/bin/python ]] || fail "no .venv: run make setup first"
for tool in debootstrap systemd-nspawn apt-cacher-ng ip ssh zstd; do
  command -v "$tool" >/dev/null || fail "$tool is not installed: run make setup first (it installs it)"
done
unshare --net --mount --pid --fork true 2>/dev/null || fail "this machine cannot create namespaces"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
  fail "the kernel has no overlay filesystem"
grep -qs '^ID=debian' /etc/os-release || fail "the local fleet is built from this machine's Debian apt sources: run it on Debian 12"

mkdir -p "$repo/reports"
: >"$log"
step=0
# step "what" command...: one progress line, the output into the log, the log's tail on failure.
step() {
  local what=$1 t0=$SECONDS
  shift
  step=$((step + 1))
  printf '[%d/%d] %s ... ' "$step" "$steps" "$what"
  if "$@" >>"$log" 2>&1; then
    printf 'done in %d s\n' "$((SECONDS - t0))"
  else
    printf 'FAILED after %d s\n' "$((SECONDS - t0))"
    echo "--- last lines of $log ---" >&2
    tail -n 25 "$log" >&2
    return 1
  fi
}

# shellcheck disable=SC2317  # called from the EXIT trap
take_down() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n ${KEEP:-} ]]; then
    echo "demo: the host stays up (KEEP=1): LABRIG_FLEET=$LABRIG_FLEET tests/fleet/fleet.sh ssh node1;" \
      "take it down with LABRIG_FLEET=$LABRIG_FLEET make fleet-down"
  else
    printf '[%d/%d] take the host down ... ' "$steps" "$steps"
    "$here/fleet.sh" down >>"$log" 2>&1 && echo done || echo "FAILED (see $log)"
  fi
  echo "demo: $((SECONDS - started)) s in all; log: $log"
  exit "$status"
}
trap take_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

inventory_dir=/run/labrig-fleet/$LABRIG_FLEET/demo-inventory
profile() {
  local fleet_inventory
  fleet_inventory=$("$here/fleet.sh" inventory)
  mkdir -p "$inventory_dir/host_vars"
  cp "$fleet_inventory" "$inventory_dir/hosts.ini"
  # The CPU profile: what a lab's CPU-only build box gets (inventory.example, group cpu_only).
  cat >"$inventory_dir/host_vars/node1.yml" <<'YAML'
---
labrig_use_cuda: false
labrig_blas: openblas
mxnet_install_method: pip
preflight_require_gpu: false
YAML
}

step "boot a local Debian 12 host (first run: builds the base system, a few minutes)" \
  bash -c "LABRIG_WHEELS=cpu '$here/prefetch-wheels.sh' && '$here/fleet.sh' up"
profile
step "provision node1: OpenBLAS + MXNet's CPU wheel + the verify suite" \
  make -C "$repo" --no-print-directory provision INVENTORY="$inventory_dir/hosts.ini"
step "verify node1 (no GPU here: the CPU checks, NDArray and the MLP)" \
  make -C "$repo" --no-print-directory verify INVENTORY="$inventory_dir/hosts.ini" CPU_ONLY=1
summary=$repo/reports/demo-summary.txt
step "render the fleet report" \
  bash -c "'$repo/.venv/bin/python' -m verify.fleet report --reports-dir '$repo/reports' --width 80 >'$summary'"
echo
cat "$summary"
echo "Open it: $(readlink -f "$repo/reports/latest")/fleet.html  (make report OPEN=1)"
