#!/usr/bin/env bash
# Fleet provisioning benchmark (printed, never asserted): on fresh local fleets with one light
# profile, measures
#   - `make provision` wall time for 1 host and for 3 hosts (ratio 3/1; goal <= 1.3),
#   - the second, no-op run as a fraction of the first (goal <= 0.10),
#   - `make verify CPU_ONLY=1` wall time per host,
#   - bytes each host pulled through the apt cache and how many of them came from the mirror.
# Needs root (it boots fleets). LABRIG_BENCH_PLAYBOOK=path runs that playbook instead of
# `make provision` (e.g. tests/fleet/smoke.yml, to time the harness alone).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fleet_sh=$repo/tests/fleet/fleet.sh
export LABRIG_FLEET=${LABRIG_FLEET:-bench}
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.7.0/24}
playbook=${LABRIG_BENCH_PLAYBOOK:-}
results=$(mktemp -d /tmp/labrig-bench-fleet.XXXXXX)

((EUID == 0)) || {
  echo "bench-fleet: needs root (it boots local fleets)" >&2
  exit 1
}
# `make verify` needs the roles a custom playbook may not have run.
with_verify=0
if [[ -z $playbook ]]; then with_verify=1; fi

trap '"$fleet_sh" down >/dev/null 2>&1 || true' EXIT INT TERM
"$fleet_sh" down >/dev/null
if [[ -z $playbook ]]; then "$repo/tests/fleet/prefetch-wheels.sh" >&2; fi

# "name address" per host of an inventory written by fleet.sh.
fleet_hosts() {
  awk '/^\[fleet\]/ { on = 1; next } /^\[/ { on = 0 }
       on && NF { sub("ansible_host=", "", $2); print $1, $2 }' "$1"
}

# The light profile every host gets: no CUDA stack, OpenBLAS, MXNet's CPU wheel.
light_inventory() {
  local fleet_inventory=$1 folder=$2 host
  mkdir -p "$folder/host_vars"
  cp "$fleet_inventory" "$folder/hosts.ini"
  while read -r host _; do
    cat >"$folder/host_vars/$host.yml" <<'VARS'
---
labrig_use_cuda: false
labrig_blas: openblas
mxnet_install_method: pip
preflight_require_gpu: false
VARS
  done < <(fleet_hosts "$fleet_inventory")
  echo "$folder/hosts.ini"
}

# Runs a command, appends its output to a log, prints its wall time in seconds (ms precision).
timed() {
  local log=$1 started status=0
  shift
  started=$EPOCHREALTIME
  "$@" >>"$log" 2>&1 || status=$?
  awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }'
  if ((status != 0)); then
    echo "bench-fleet: '$*' failed ($status); last lines of $log:" >&2
    tail -n 30 "$log" >&2
    return "$status"
  fi
}

provision() {
  local inventory=$1 log=$2
  if [[ -n $playbook ]]; then
    timed "$log" "$repo/.venv/bin/ansible-playbook" -i "$inventory" "$playbook"
  else
    timed "$log" make -C "$repo" --no-print-directory provision "INVENTORY=$inventory"
  fi
}

declare -A first_s second_s
declare -a report_lines

# One fresh fleet of $1 hosts: first run, no-op run, verify per host, cache bytes per host.
measure() {
  local count=$1 inventory fleet_inventory log=$results/fleet-$1.log host address
  LABRIG_FLEET_HOSTS=$count "$fleet_sh" up >"$results/up-$count.out"
  fleet_inventory=$(tail -n 1 "$results/up-$count.out")
  inventory=$(light_inventory "$fleet_inventory" "$results/inventory-$count")
  first_s[$count]=$(provision "$inventory" "$log")
  second_s[$count]=$(provision "$inventory" "$log")
  report_lines+=("$count host(s): first run ${first_s[$count]} s, no-op run ${second_s[$count]} s")
  while read -r host address; do
    local verify_s="n/a"
    if ((with_verify)); then
      verify_s=$(timed "$log" make -C "$repo" --no-print-directory verify "INVENTORY=$inventory" \
        "HOST=$host" CPU_ONLY=1)
    fi
    # apt-cacher-ng's transfer log: time|I (from the mirror) or O (to the client)|bytes|client|path
    local through_cache from_mirror
    read -r through_cache from_mirror < <(awk -F'|' -v ip="$address" '
      $4 == ip && $2 == "O" { o += $3 } $4 == ip && $2 == "I" { i += $3 }
      END { printf "%d %d\n", o, i }' "/run/labrig-fleet/$LABRIG_FLEET/apt-cacher-ng-log/apt-cacher.log")
    report_lines+=("  $host: verify ${verify_s} s; apt through the cache $((through_cache / 1048576)) MiB, of which from the mirror $((from_mirror / 1048576)) MiB")
  done < <(fleet_hosts "$fleet_inventory")
  "$fleet_sh" down >/dev/null
}

measure 1
measure 3

echo "labrig fleet benchmark, $(date -u +%FT%TZ), $(nproc) cores, playbook: ${playbook:-make provision}"
printf '%s\n' "${report_lines[@]}"
awk -v one="${first_s[1]}" -v three="${first_s[3]}" -v noop="${second_s[3]}" 'BEGIN {
  printf "provision 3 hosts / 1 host: %.2f (goal <= 1.3)\n", three / one
  printf "no-op run / first run (3 hosts): %.2f (goal <= 0.10)\n", noop / three
}'
echo "logs: $results"
