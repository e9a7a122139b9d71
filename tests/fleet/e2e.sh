#!/usr/bin/env bash
# The CI stage that runs labrig against real hosts: boots a fresh local fleet, runs the stages in
# tests/fleet/ as pytest tests against it, and takes the fleet down whatever happens.
# Where the fleet cannot run (not root, no namespaces, no systemd-nspawn) it fails loudly when
# CI=true and prints a loud SKIP otherwise. Ends with pytest's summary line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export LABRIG_FLEET=${LABRIG_FLEET:-e2e}
export LABRIG_FLEET_HOSTS=${LABRIG_FLEET_HOSTS:-3}
# LABRIG_FLEET_HOSTS=4 LABRIG_FLEET_RELEASES=node4=trixie adds the Debian 13 full-stack host
# (tests/fleet/README.md), started after the mirror-outage test. Not in CI yet: its CI runs found
# two bugs in turn (the cu11 wheels' unpack, the CPython tarball's match), both fixed, and it has
# not yet passed a whole run.
export LABRIG_FLEET_RELEASES=${LABRIG_FLEET_RELEASES-}
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.5.0/24}

cannot_run() {
  local banner='############################################################################'
  if [[ ${CI:-} == true ]]; then
    printf '%s\nFLEET STAGE FAILED: %s\nCI must run the real-host stage; fix the machine.\n%s\n' \
      "$banner" "$1" "$banner" >&2
    exit 1
  fi
  printf '%s\nFLEET STAGE SKIPPED: %s\nNothing was tested on real hosts (CI would fail here).\n%s\n' \
    "$banner" "$1" "$banner" >&2
  exit 0
}

((EUID == 0)) || cannot_run "needs root (network namespaces, overlay mounts, systemd-nspawn)"
for tool in systemd-nspawn debootstrap apt-cacher-ng ip ssh; do
  command -v "$tool" >/dev/null || cannot_run "$tool is not installed (run tests/fleet/install-host-packages.sh)"
done
unshare --net --mount --pid --fork true 2>/dev/null || cannot_run "cannot create namespaces here"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
  cannot_run "the kernel has no overlay filesystem"
[[ -x $repo/.venv/bin/python ]] || cannot_run "no $repo/.venv: run 'make setup' first"

# A fleet left over from an interrupted run would make the first-run assertions meaningless.
"$here/fleet.sh" down >/dev/null

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo "e2e: taking the fleet down" >&2
  "$here/fleet.sh" down || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
if [[ -f $repo/playbooks/provision.yml ]]; then
  "$here/prefetch-wheels.sh"
  "$here/fetch-python-source.sh"
fi
inventory=$("$here/fleet.sh" up)
echo "e2e: fleet '$LABRIG_FLEET' up in $((SECONDS - started)) s: $inventory" >&2

export LABRIG_FLEET_INVENTORY=$inventory
# Each make/playbook run's full output (Ansible's per-task times included) outlives the stage.
export LABRIG_E2E_LOG_DIR=${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}/logs/$LABRIG_FLEET-commands
rm -rf "$LABRIG_E2E_LOG_DIR"
echo "e2e: every command's output goes to $LABRIG_E2E_LOG_DIR" >&2
cd "$repo"
# No `exec`: the trap must still take the fleet down after pytest.
status=0
"$repo/.venv/bin/python" -m pytest -p no:cacheprovider -v -rs --durations=0 tests/fleet || status=$?
echo "e2e: stage took $((SECONDS - started)) s" >&2
exit "$status"
