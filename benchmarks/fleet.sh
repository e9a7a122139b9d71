#!/usr/bin/env bash
# Fleet provisioning benchmark (printed, never asserted). On fresh local fleets, in one run:
#   - light profile: `make provision` wall time for 1 host and for 3 hosts (ratio 3/1; goal <= 1.3),
#   - the second, no-op run: wall time (goal <= 5 s for one host) and the controller's CPU time per
#     host, user+sys of make, ansible-playbook and every child (goal <= 3 s),
#   - the floor: one more fresh host given exactly the light profile's packages by hand (a plain
#     `apt-get install` and `pip install` over SSH); labrig / plain (goal <= 1.3), the single host's
#     first run split by its task times (benchmarks/task_times.py) and, less its other host tasks,
#     as a multiple of plain; Ansible's cost per task on that host against the bare SSH + sudo +
#     Python start and the import of ansible-core's module_utils from a zip (task_floor below),
#   - MXNet's source path against the stand-in build system (tests/fleet/stand_in_mxnet, `make slow`:
#     a fixed 10 s per object) on the same hosts: 3 identical hosts / 1 host (goal <= 1.2; one build
#     shared through the artifact cache, the other hosts install its wheel),
#   - `make verify CPU_ONLY=1` wall time per host, and the bytes each host pulled through the apt
#     cache and how many of them came from the mirror,
#   - then benchmarks/debian13_full_stack.sh: the full stack on a fresh Debian 13 host, labrig /
#     plain (goal <= 1.15).
# Needs root (it boots fleets). Honours LABRIG_FLEET (default bench), LABRIG_FLEET_SUBNET (default
# 10.203.7.0/24) and LABRIG_FLEET_CACHE. LABRIG_BENCH_PLAYBOOK=path runs that playbook instead of
# `make provision` (e.g. tests/fleet/smoke.yml, to time the harness alone; no plain host, no source
# path then).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fleet_sh=$repo/tests/fleet/fleet.sh
export LABRIG_FLEET=${LABRIG_FLEET:-bench}
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.7.0/24}
export LABRIG_FLEET_CACHE=${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}
playbook=${LABRIG_BENCH_PLAYBOOK:-}
results=$(mktemp -d /tmp/labrig-bench-fleet.XXXXXX)
# How the benchmark reaches a fleet host itself (the plain install, the bare SSH start): the fleet's
# key and known hosts, host keys checked.
fleet_ssh_options=(-i "/run/labrig-fleet/$LABRIG_FLEET/id_ed25519" -o BatchMode=yes
  -o "UserKnownHostsFile=/run/labrig-fleet/$LABRIG_FLEET/known_hosts" -o StrictHostKeyChecking=yes)

((EUID == 0)) || {
  echo "bench-fleet: needs root (it boots local fleets)" >&2
  exit 1
}
# `make verify`, the plain host and the source path need the roles a custom playbook may not run.
full=0
if [[ -z $playbook ]]; then full=1; fi

trap '"$fleet_sh" down >/dev/null 2>&1 || true' EXIT INT TERM
"$fleet_sh" down >/dev/null
if ((full)); then "$repo/tests/fleet/prefetch-wheels.sh" >&2; fi

# "name address" per host of an inventory written by fleet.sh.
fleet_hosts() {
  awk '/^\[fleet\]/ { on = 1; next } /^\[/ { on = 0 }
       on && NF { sub("ansible_host=", "", $2); print $1, $2 }' "$1"
}

# The first $3 hosts of a fleet's inventory (the plain host stays out of labrig's inventory: no
# HOST= limit, whose host-name check would add its own ansible processes to the measured CPU).
first_hosts() {
  local fleet_inventory=$1 count=$2
  awk -v n="$count" '/^\[fleet\]/ { on = 1; print; next } /^\[/ { on = 0 }
    on && NF { if (++seen > n) next } { print }' "$fleet_inventory"
}

# The light profile every host gets (benchmarks/light-profile.yml).
light_inventory() {
  local fleet_inventory=$1 folder=$2 count=$3 host
  mkdir -p "$folder/host_vars"
  first_hosts "$fleet_inventory" "$count" >"$folder/hosts.ini"
  while read -r host _; do
    cp "$repo/benchmarks/light-profile.yml" "$folder/host_vars/$host.yml"
  done < <(fleet_hosts "$fleet_inventory")
  echo "$folder/hosts.ini"
}

# The same hosts on MXNet's source path, against the stand-in placed at /srv/labrig-stand-in.
source_inventory() {
  local fleet_inventory=$1 folder=$2 commit=$3 count=$4 host builder
  mkdir -p "$folder/host_vars"
  first_hosts "$fleet_inventory" "$count" >"$folder/hosts.ini"
  # The build host the lab trusts to share its builds (mxnet_build_host): the first one.
  builder=$(fleet_hosts "$fleet_inventory" | head -n 1 | cut -d' ' -f1)
  while read -r host _; do
    cat >"$folder/host_vars/$host.yml" <<VARS
---
labrig_use_cuda: false
labrig_blas: openblas
preflight_require_gpu: false
mxnet_install_method: source
mxnet_git_repo: file:///srv/labrig-stand-in/$commit/mxnet.git
mxnet_git_commit: $commit
mxnet_src_dir: /opt/labrig/src/stand-in-mxnet
mxnet_venv: /opt/labrig/stand-in-venv
mxnet_make_target: slow
mxnet_build_host: $builder
mxnet_artifact_cache: $folder/artifacts
mxnet_use_opencv: false
mxnet_use_ccache: false
mxnet_build_progress_interval: 5
mxnet_expectations_dir: /etc/labrig/stand-in-expectations.d
VARS
  done < <(fleet_hosts "$fleet_inventory")
  echo "$folder/hosts.ini"
}

# Runs a command, appends its output to a log, prints "wall user+sys" in seconds: the wall time and
# the CPU time of the command and all its children (bash's `times`, in a subshell of its own).
timed() {
  local log=$1 status=0 line
  shift
  line=$(
    started=$EPOCHREALTIME
    "$@" >>"$log" 2>&1 || exit $?
    ended=$EPOCHREALTIME
    # The children's user and system time, the second line of `times`: "0m1.234s 0m0.567s".
    # Into a file: in a pipe, `times` would run in a fresh subshell that has no children yet.
    times >"$log.times"
    cpu=$(tail -n 1 "$log.times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/)
      printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    awk -v a="$started" -v b="$ended" -v c="$cpu" 'BEGIN { printf "%.1f %s\n", b - a, c }'
  ) || status=$?
  if ((status != 0)); then
    echo "bench-fleet: '$*' failed ($status); last lines of $log:" >&2
    tail -n 30 "$log" >&2
    return "$status"
  fi
  echo "$line"
}

provision() {
  local inventory=$1 log=$2
  if [[ -n $playbook ]]; then
    timed "$log" "$repo/.venv/bin/ansible-playbook" -i "$inventory" "$playbook"
  else
    timed "$log" make -C "$repo" --no-print-directory provision "INVENTORY=$inventory"
  fi
}

# The light profile's packages by hand on one fresh host: the apt proxy line, the packages the
# roles install for it (mkl: openblas; mxnet: venv tooling and runtime libraries), a venv and the
# pip lock's `mxnet` set from the wheelhouse, copied over first (the hosts reach no index).
plain_install() {
  local inventory=$1 host=$2 log=$3 address proxy pins wheels=() pin script=$results/plain.sh
  address=$(fleet_hosts "$inventory" | awk -v h="$host" '$1 == h { print $2 }')
  proxy=$(sed -n 's/^labrig_apt_proxy=//p' "$inventory")
  pins=$("$repo/.venv/bin/python" - "$repo/roles/labrig/files/pip-lock.yml" <<'PY'
import sys, yaml
print(" ".join(line.split()[0] for line in yaml.safe_load(open(sys.argv[1]))["locks"]["cp311"]["mxnet"]))
PY
)
  for pin in $pins; do
    wheels+=("$(find "$LABRIG_FLEET_CACHE/wheels" -maxdepth 1 \( -iname "${pin%%==*}-${pin#*==}-*.whl" \
      -o -iname "$(echo "${pin%%==*}" | tr - _)-${pin#*==}-*.whl" \) | head -n 1)")
  done
  {
    echo "set -euo pipefail"
    printf 'opts=(%s)\n' "$(printf '%q ' "${fleet_ssh_options[@]}")"
    printf 'scp "${opts[@]}" -q %s %q:/tmp/\n' "$(printf '%q ' "${wheels[@]}")" "labrig@$address"
    printf 'ssh "${opts[@]}" %q bash -s <<%s\n' "labrig@$address" "'HOST'"
    echo "set -e"
    printf 'echo %q | sudo tee /etc/apt/apt.conf.d/01proxy >/dev/null\n' "Acquire::http::Proxy \"$proxy\";"
    echo "sudo apt-get update -q"
    echo "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas-dev liblapack-dev python3-venv python3-dev python3-packaging libgomp1 libquadmath0"
    echo "sudo python3 -m venv /opt/plain-venv"
    echo "sudo /opt/plain-venv/bin/pip install -q --no-index --find-links /tmp $pins"
    echo "HOST"
  } >"$script"
  timed "$log" bash "$script"
}

# Ansible's own cost per task on a provisioned host: a run of 30 tasks of one kind less a run of
# none, for a command, a directory and a small file (the kinds most of the roles' tasks are), and
# the bare SSH + sudo + Python start each of them rides on.
task_floor() {
  local inventory=$1 host=$2 count=30 kind i empty wall address line=()
  for kind in none command directory file; do
    {
      printf -- '- name: %s\n  hosts: %s\n  gather_facts: false\n  become: true\n  tasks:\n' "$kind" "$host"
      local tasks=$count
      if [[ $kind == none ]]; then
        tasks=0
        echo "    - {name: nothing, ansible.builtin.meta: noop}"
      fi
      for ((i = 0; i < tasks; i++)); do
        case $kind in
          command) printf '    - {name: c%d, ansible.builtin.command: "true", changed_when: false}\n' "$i" ;;
          directory) printf '    - {name: d%d, ansible.builtin.file: {path: /tmp/labrig-floor-d%d, state: directory, mode: "0755"}}\n' "$i" "$i" ;;
          file) printf '    - {name: f%d, ansible.builtin.copy: {dest: /tmp/labrig-floor-f%d, content: "%d\\n", mode: "0644"}}\n' "$i" "$i" "$i" ;;
        esac
      done
    } >"$results/floor-$kind.yml"
    wall=$(ANSIBLE_CONFIG=$repo/ansible.cfg timed "$results/floor.log" "$repo/.venv/bin/ansible-playbook" \
      -i "$inventory" "$results/floor-$kind.yml")
    wall=${wall% *}
    if [[ $kind == none ]]; then
      empty=$wall
    else
      line+=("$kind $(awk -v w="$wall" -v e="$empty" -v n="$count" 'BEGIN { printf "%.2f", (w - e) / n }') s")
    fi
  done
  address=$(fleet_hosts "$inventory" | awk -v h="$host" '$1 == h { print $2 }')
  local ssh=(ssh "${fleet_ssh_options[@]}" -o ControlMaster=auto -o ControlPersist=30s
    -o "ControlPath=$results/ssh-%h" "labrig@$address")
  "${ssh[@]}" true
  wall=$(timed "$results/floor.log" bash -c "for i in \$(seq $count); do $(printf '%q ' "${ssh[@]}") sudo -n python3 -c pass; done")
  wall=${wall% *}
  # What each module then does before its own work: import ansible-core's module_utils from the zip
  # the module arrives in (AnsiballZ; no bytecode cache there, so every task compiles them again).
  module_utils_zip "$results/module_utils.zip"
  scp "${fleet_ssh_options[@]}" -o "ControlPath=$results/ssh-%h" -q "$results/module_utils.zip" \
    "labrig@$address:/tmp/labrig-module-utils.zip"
  local import_wall probe="import sys; sys.path.insert(0, '/tmp/labrig-module-utils.zip'); import ansible.module_utils.basic"
  local import_command=("${ssh[@]}" "sudo -n python3 -c $(printf %q "$probe")")
  import_wall=$(timed "$results/floor.log" bash -c "for i in \$(seq $count); do $(printf '%q ' "${import_command[@]}"); done")
  import_wall=${import_wall% *}
  echo "per task on $host (a run of $count less a run of none): ${line[*]}; the SSH + sudo + Python start under each: $(awk -v w="$wall" -v n="$count" 'BEGIN { printf "%.3f", w / n }') s, and the module's import of ansible-core's module_utils from its zip: $(awk -v w="$import_wall" -v b="$wall" -v n="$count" 'BEGIN { printf "%.3f", (w - b) / n }') s"
}

# ansible-core's module_utils as AnsiballZ ships them to a host: sources only, deflated.
module_utils_zip() {
  "$repo/.venv/bin/python" - "$1" <<'PY'
import pathlib
import sys
import zipfile

import ansible

root = pathlib.Path(ansible.__file__).parent
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("ansible/__init__.py", "")
    for source in sorted((root / "module_utils").rglob("*.py")):
        archive.write(source, source.relative_to(root.parent))
PY
}

# Places the stand-in repository on every host of an inventory (not timed: it stands for a mirror).
place_stand_in() {
  local inventory=$1 archive=$2 commit=$3
  "$repo/.venv/bin/ansible" -i "$inventory" all -b -m ansible.builtin.unarchive \
    -a "src=$archive dest=/srv creates=/srv/labrig-stand-in/$commit/mxnet.git/HEAD" >>"$results/stand-in.log"
}

stand_in() {
  local work=$results/stand-in commit
  commit=$(cd "$repo" && .venv/bin/python -c "
import json, sys
sys.path.insert(0, 'tests/fleet/stand_in_mxnet')
import make_stand_in
print(make_stand_in.create(__import__('pathlib').Path('$work/labrig-stand-in')).commit)")
  tar -C "$work" -cf "$work.tar" --transform "s|^labrig-stand-in/mxnet.git|labrig-stand-in/$commit/mxnet.git|" \
    labrig-stand-in/mxnet.git
  echo "$commit"
}

declare -A first_s noop_s noop_cpu source_s
declare -a report_lines
plain_s=""
if ((full)); then stand_in_commit=$(stand_in); fi

# One fresh fleet of $1 light hosts (and one more for the plain install when $2 is set): first run,
# no-op run, the source path, verify per host, cache bytes per host.
measure() {
  local count=$1 plain=${2:-} inventory fleet_inventory log=$results/fleet-$1.log host address
  local hosts=$count
  if [[ -n $plain ]]; then hosts=$((count + 1)); fi
  LABRIG_FLEET_HOSTS=$hosts "$fleet_sh" up >"$results/up-$count.out"
  fleet_inventory=$(tail -n 1 "$results/up-$count.out")
  inventory=$(light_inventory "$fleet_inventory" "$results/inventory-$count" "$count")
  local first noop
  first=$(provision "$inventory" "$log")
  noop=$(provision "$inventory" "$log")
  first_s[$count]=${first% *}
  noop_s[$count]=${noop% *}
  noop_cpu[$count]=$(awk -v c="${noop#* }" -v n="$count" 'BEGIN { printf "%.2f", c / n }')
  report_lines+=("$count light host(s): first run ${first_s[$count]} s (controller CPU ${first#* } s), no-op run ${noop_s[$count]} s (controller CPU ${noop#* } s, ${noop_cpu[$count]} s per host)")
  if [[ -n $plain ]]; then
    local plain_host
    plain_host=$(fleet_hosts "$fleet_inventory" | tail -n 1 | awk '{ print $1 }')
    local plain_run
    plain_run=$(plain_install "$fleet_inventory" "$plain_host" "$results/plain.log")
    plain_s=${plain_run% *}
    report_lines+=("  plain apt-get + pip install of the same packages on $plain_host: $plain_s s")
    report_lines+=("$("$repo/.venv/bin/python" "$repo/benchmarks/task_times.py" "$log" --plain "$plain_s" \
      --wall "${first_s[$count]}")")
    local light_host
    light_host=$(fleet_hosts "$fleet_inventory" | head -n 1 | awk '{ print $1 }')
    report_lines+=("  $(task_floor "$inventory" "$light_host")")
  fi
  if ((full)); then
    local source_inventory source_run
    source_inventory=$(source_inventory "$fleet_inventory" "$results/source-$count" "$stand_in_commit" "$count")
    place_stand_in "$source_inventory" "$results/stand-in.tar" "$stand_in_commit"
    source_run=$(provision "$source_inventory" "$results/source-$count.log")
    source_s[$count]=${source_run% *}
    local builds
    builds=$(grep -c "built here and shared" "$results/source-$count.log" || true)
    report_lines+=("  source path (stand-in, 10 s per object): ${source_s[$count]} s; builds: $builds")
  fi
  while read -r host address; do
    local verify_s="n/a"
    if ((full)); then
      verify_s=$(timed "$log" make -C "$repo" --no-print-directory verify "INVENTORY=$inventory" \
        "HOST=$host" CPU_ONLY=1)
      verify_s=${verify_s% *}
    fi
    # apt-cacher-ng's transfer log: time|I (from the mirror) or O (to the client)|bytes|client|path
    local through_cache from_mirror
    read -r through_cache from_mirror < <(awk -F'|' -v ip="$address" '
      $4 == ip && $2 == "O" { o += $3 } $4 == ip && $2 == "I" { i += $3 }
      END { printf "%d %d\n", o, i }' "/run/labrig-fleet/$LABRIG_FLEET/apt-cacher-ng-log/apt-cacher.log")
    report_lines+=("  $host: verify ${verify_s} s; apt through the cache $((through_cache / 1048576)) MiB, of which from the mirror $((from_mirror / 1048576)) MiB")
  done < <(fleet_hosts "$fleet_inventory" | head -n "$count")
  "$fleet_sh" down >/dev/null
}

if ((full)); then measure 1 plain; else measure 1; fi
measure 3

echo "labrig fleet benchmark, $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, playbook: ${playbook:-make provision}"
printf '%s\n' "${report_lines[@]}"
awk -v one="${first_s[1]}" -v three="${first_s[3]}" -v noop1="${noop_s[1]}" -v noop3="${noop_s[3]}" \
  -v cpu1="${noop_cpu[1]}" -v cpu3="${noop_cpu[3]}" -v plain="$plain_s" \
  -v src1="${source_s[1]:-}" -v src3="${source_s[3]:-}" 'BEGIN {
  printf "provision 3 hosts / 1 host (light): %.2f (goal <= 1.3)\n", three / one
  printf "no-op run, 1 light host: %.1f s wall (goal <= 5 s); controller CPU per host: %.2f s (1 host), %.2f s (3 hosts) (goal <= 3 s)\n", noop1, cpu1, cpu3
  printf "no-op run / first run (3 hosts): %.2f\n", noop3 / three
  if (plain != "") printf "labrig / plain apt-get + pip install (1 fresh host): %.2f (goal <= 1.3)\n", one / plain
  if (src1 != "") printf "source path, 3 identical hosts / 1 host (stand-in): %.2f (goal <= 1.2)\n", src3 / src1
}'
echo "logs: $results"
# The Debian 13 full stack against a plain install (benchmarks/debian13_full_stack.sh).
if ((full)); then LABRIG_FLEET=bench13 LABRIG_FLEET_SUBNET=10.203.8.0/24 "$repo/benchmarks/debian13_full_stack.sh"; fi
