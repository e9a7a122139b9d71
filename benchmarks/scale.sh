#!/usr/bin/env bash
# Scale benchmark (printed, never asserted; not in CI): one fleet of LABRIG_SCALE_HOSTS (default 24)
# light hosts, provisioned once (then verified and provisioned once more, see below), then at 1, 8
# and all hosts:
#   - a no-op `make provision`: seconds per host and the controller's peak memory (the summed RSS of
#     make, ansible-playbook and every process under them, sampled every 0.2 s),
#   - `make verify` in quick mode (CPU only, the MLP and throughput workloads skipped): seconds per
#     host and peak memory,
# and the fleet report of the largest run: fleet.html's size and `make report`'s render time.
# Needs root. Honours LABRIG_FLEET (default scale), LABRIG_FLEET_SUBNET (default 10.203.8.0/24),
# LABRIG_FLEET_CACHE; LABRIG_SCALE_SIZES="1 8 24" the host counts; LABRIG_SCALE_FIRST_BATCH (default
# 6) how many hosts the first provision takes at a time.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fleet_sh=$repo/tests/fleet/fleet.sh
export LABRIG_FLEET=${LABRIG_FLEET:-scale}
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.8.0/24}
export LABRIG_FLEET_HOSTS=${LABRIG_SCALE_HOSTS:-24}
read -r -a sizes <<<"${LABRIG_SCALE_SIZES:-1 8 $LABRIG_FLEET_HOSTS}"
results=$(mktemp -d /tmp/labrig-bench-scale.XXXXXX)

((EUID == 0)) || {
  echo "bench-scale: needs root (it boots a local fleet)" >&2
  exit 1
}
trap '"$fleet_sh" down >/dev/null 2>&1 || true' EXIT INT TERM
"$fleet_sh" down >/dev/null
LABRIG_WHEELS=cpu "$repo/tests/fleet/prefetch-wheels.sh" >&2
fleet_inventory=$("$fleet_sh" up | tail -n 1)

inventory=$results/inventory/hosts.ini
mkdir -p "$results/inventory/group_vars"
cp "$fleet_inventory" "$inventory"
cp "$repo/benchmarks/light-profile.yml" "$results/inventory/group_vars/all.yml"
cat >"$results/quick.yml" <<'VARS'
---
verify_extra_args: [--skip, workload.mlp, workload.perf]
VARS

# Runs a command in its own process group; prints "wall_s peak_rss_mib".
measured() {
  local log=$1 started peak=0 rss pid status=0
  shift
  started=$EPOCHREALTIME
  setsid "$@" >>"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(ps -o rss= -g "$pid" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    ((rss > peak)) && peak=$rss
    sleep 0.2
  done
  wait "$pid" || status=$?
  awk -v a="$started" -v b="$EPOCHREALTIME" -v p="$peak" 'BEGIN { printf "%.1f %.0f\n", b - a, p / 1024 }'
  return "$status"
}

hosts_upto() { seq 1 "$1" | sed 's/^/node/' | paste -sd, -; }

# In batches: the harness's apt-cacher-ng, asked by 24 hosts at once to refresh the same package
# lists, failed to replace its own files ("Failure to move file ... File exists") and left 14 hosts'
# apt hanging on a half-closed connection. A rollout goes in batches on a real lab too.
first_batch=${LABRIG_SCALE_FIRST_BATCH:-6}
echo "bench-scale: provisioning $LABRIG_FLEET_HOSTS hosts once, $first_batch at a time (logs: $results)" >&2
read -r first_s first_mib < <(measured "$results/provision-first.log" \
  make -C "$repo" --no-print-directory provision "INVENTORY=$inventory" "BATCH=$first_batch")
# The first `make verify` deploys the suite: its packages go into the virtualenv and its
# expectations into /etc/labrig, so the next provision is a full run on every host, once (it
# records the hosts again). Both done here, before the loop measures the steady state.
read -r deploy_s deploy_mib < <(measured "$results/verify-first.log" \
  make -C "$repo" --no-print-directory verify "INVENTORY=$inventory" CPU_ONLY=1 \
  "ARGS=-e @$results/quick.yml") || true
read -r rerecord_s rerecord_mib < <(measured "$results/provision-rerecord.log" \
  make -C "$repo" --no-print-directory provision "INVENTORY=$inventory")
rows=()
for n in "${sizes[@]}"; do
  read -r noop_s noop_mib < <(measured "$results/noop-$n.log" \
    make -C "$repo" --no-print-directory provision "INVENTORY=$inventory" "HOST=$(hosts_upto "$n")")
  verify_status=0
  read -r verify_s verify_mib < <(measured "$results/verify-$n.log" \
    make -C "$repo" --no-print-directory verify "INVENTORY=$inventory" "HOST=$(hosts_upto "$n")" \
    CPU_ONLY=1 "ARGS=-e @$results/quick.yml") || verify_status=$?
  rows+=("$(awk -v n="$n" -v ns="$noop_s" -v nm="$noop_mib" -v vs="$verify_s" -v vm="$verify_mib" \
    -v st="$verify_status" 'BEGIN { printf "| %d | %.1f | %.2f | %d | %.1f | %.2f | %d | %s |", n, ns, ns / n, nm,
      vs, vs / n, vm, st == 0 ? "ok" : "exit " st }')")
done
report=$(readlink -f "$repo/reports/latest")
render_started=$EPOCHREALTIME
make -C "$repo" --no-print-directory report "RUN=$(basename "$report")" >"$results/report.log" 2>&1
render_s=$(awk -v a="$render_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

echo "labrig scale benchmark, $(date -u +%FT%TZ), $(nproc) cores, $LABRIG_FLEET_HOSTS light hosts, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "first provision of all $LABRIG_FLEET_HOSTS hosts ($first_batch at a time): ${first_s} s, controller peak ${first_mib} MiB"
echo "first verify of all hosts (deploys the suite): ${deploy_s} s, peak ${deploy_mib} MiB; the provision after it (a full run on each host, once): ${rerecord_s} s, peak ${rerecord_mib} MiB"
echo "| hosts | no-op provision s | s/host | peak MiB | verify (quick) s | s/host | peak MiB | verify |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "fleet report of the last verify run: fleet.html $(($(stat -c %s "$report/fleet.html") / 1024)) KiB, fleet.json $(($(stat -c %s "$report/fleet.json") / 1024)) KiB; make report renders it in ${render_s} s"
echo "logs: $results"
