#!/usr/bin/env bash
# The real MXNet 1.9.1 CPU source build (MKL from Debian's intel-mkl, MKLDNN on, ccache), run by
# the mxnet role on one kept fleet host and resumed across sessions: it takes CPU-hours, longer
# than one working session, and runs beside CI at the lowest CPU and I/O priority.
#
#   mxnet-build.sh start     fleet up (the host's kept layer: its tree, objects and ccache),
#                            provision node1 with the source method until make runs on the host,
#                            then leave make running there; prints progress
#   mxnet-build.sh progress  objects done of total (oneDNN apart), make running or its exit code,
#                            the last compiler error
#   mxnet-build.sh finish    follow the build to its end (the role attaches to the running make),
#                            install the binding, then `make verify CPU_ONLY=1` and Features()
#   mxnet-build.sh pause     fleet down keeping node1's layer (make stops; `start` continues it)
#
# Needs the pinned source archive in $LABRIG_FLEET_CACHE/sources/ (tests/fleet/README.md: making
# it). The fleet is its own: LABRIG_FLEET=build on 10.203.11.0/24 with cache /var/cache/labrig-build
# unless the environment says otherwise. Record what `progress` says in tests/fleet/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export LABRIG_FLEET=${LABRIG_FLEET:-build}
export LABRIG_FLEET_SUBNET=${LABRIG_FLEET_SUBNET:-10.203.11.0/24}
export LABRIG_FLEET_CACHE=${LABRIG_FLEET_CACHE:-/var/cache/labrig-build}
export LABRIG_FLEET_HOSTS=1
export LABRIG_FLEET_KEEP=node1
HOST=node1
CACHE=$LABRIG_FLEET_CACHE
SRC_DIR=/opt/labrig/src/mxnet
BUILD_LOG=/var/log/labrig/mxnet-build.log
LOGS=$CACHE/logs/mxnet-build
INVENTORY_DIR=$CACHE/mxnet-build-inventory
PINNED=$here/mxnet-source.yml
# Two days: the async job on the host is killed after mxnet_build_timeout, and this build spans
# sessions with hours between them.
BUILD_TIMEOUT=172800

log() { printf 'mxnet-build: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
pinned() { awk -v key="$1:" '$1 == key { print $2 }' "$PINNED"; }
fleet() { "$here/fleet.sh" "$@"; }
on_host() { fleet ssh "$HOST" "$@"; }

archive_path() {
  local archive
  archive=$CACHE/sources/$(pinned archive)
  [[ -f $archive ]] || die "no $archive: make it with 'make mxnet-archive SRC=<checkout> OUT=$CACHE/sources' (tests/fleet/README.md)"
  [[ $(sha256sum "$archive" | cut -d' ' -f1) == "$(pinned sha256)" ]] ||
    die "$archive is not the pinned archive (sha256 in $PINNED)"
  echo "$archive"
}

write_inventory() {
  local archive=$1 inventory
  inventory=$(fleet inventory)
  mkdir -p "$INVENTORY_DIR/host_vars"
  cp "$inventory" "$INVENTORY_DIR/hosts.ini"
  cat >"$INVENTORY_DIR/host_vars/$HOST.yml" <<EOF
---
# Written by tests/fleet/mxnet-build.sh: a CPU workstation building MXNet 1.9.1 from source.
labrig_use_cuda: false
labrig_blas: mkl
preflight_require_gpu: false
mxnet_install_method: source
mxnet_source_archive: $archive
mxnet_source_archive_sha256: $(pinned sha256)
mxnet_use_mkldnn: true
mxnet_use_ccache: true
mxnet_build_timeout: $BUILD_TIMEOUT
EOF
}

# Every process in the guest, and so every compile job make forks later, at the lowest priority:
# the machine has two cores and CI runs beside this build.
lower_priority() {
  local supervisor nspawn init pids pid
  supervisor=/run/labrig-fleet/$LABRIG_FLEET/$HOST.nspawn.pid
  [[ -f $supervisor ]] || return 0
  nspawn=$(cat "$supervisor")
  # The guest's init, and through its pid namespace only the guest's processes: nspawn itself
  # lives in this machine's namespace, where --ns would match every process here.
  init=$(pgrep -P "$nspawn" | head -n 1)
  [[ -n $init ]] || return 0
  [[ $(readlink "/proc/$init/ns/pid") != "$(readlink /proc/self/ns/pid)" ]] || return 0
  pids=$(pgrep --ns "$init" --nslist pid)
  [[ -n $pids ]] || return 0
  # shellcheck disable=SC2086  # one pid per word
  renice -n 19 -p $pids >/dev/null 2>&1 || true
  for pid in $pids; do ionice -c 3 -p "$pid" 2>/dev/null || true; done
}

up() {
  local archive
  archive=$(archive_path)
  "$here/fleet.sh" up >/dev/null
  lower_priority
  write_inventory "$archive"
}

# The role's make wrapper holds this lock for as long as make runs.
make_running() {
  on_host "sudo sh -c '[ -e $SRC_DIR/.labrig-build.lock ] && ! flock --nonblock $SRC_DIR/.labrig-build.lock true'" \
    >/dev/null 2>&1
}

cmd_progress() {
  on_host "sudo bash -s" <<EOF
cd $SRC_DIR 2>/dev/null || { echo 'no source tree yet on $HOST'; exit 0; }
count() { find "\$@" 2>/dev/null | wc -l; }
# What 1.9.1's Makefile compiles for a CPU build: every .cc under src/ (its SRC wildcards).
mx_total=\$(ls src/*.cc src/*/*.cc src/*/*/*.cc src/*/*/*/*.cc 2>/dev/null | wc -l)
mx_done=\$(count build/src -name '*.o')
dnn_done=\$(count 3rdparty/mkldnn/build -name '*.o')
dnn_lib=\$( [ -f 3rdparty/mkldnn/build/src/libdnnl.a ] && echo ', libdnnl.a linked' || true)
percent=\$(grep -o '^\[ *[0-9]*%\]' $BUILD_LOG 2>/dev/null | tail -n 1 | tr -dc '0-9')
if flock --nonblock .labrig-build.lock true 2>/dev/null; then
  state="make not running, exit code \$(cat .labrig-build.rc 2>/dev/null || echo none)"
else
  state="make running (pid \$(cat .labrig-build.pid 2>/dev/null))"
fi
echo "\$(date -u +%FT%TZ) $HOST: \$state"
echo "  started: \$(head -n 1 $BUILD_LOG 2>/dev/null)"
echo "  oneDNN objects \$dnn_done (cmake \${percent:-?}%)\$dnn_lib"
echo "  MXNet objects \$mx_done of \$mx_total"
[ -f lib/libmxnet.so ] && echo "  lib/libmxnet.so: \$(du -h lib/libmxnet.so | cut -f1)"
echo "  last error: \$(grep -E 'error:|Error [0-9]+|Killed' $BUILD_LOG 2>/dev/null | tail -n 1 | cut -c1-300)"
echo "  ccache: \$(ccache --show-stats 2>/dev/null | grep -E 'Hits|hit' | head -n 2 | tr -s ' ' | tr '\n' ';')"
# CPU time of this make so far: each live process of its group with what it has reaped.
pgid=\$(ps -o pgid= -p "\$(cat .labrig-build.pid 2>/dev/null)" 2>/dev/null | tr -d ' ')
if [ -n "\$pgid" ]; then
  ticks=\$(for pid in \$(ps -e -o pid=,pgid= | awk -v g="\$pgid" '\$2 == g { print \$1 }'); do
    cut -d')' -f2- /proc/\$pid/stat 2>/dev/null | awk '{ print \$12 + \$13 + \$14 + \$15 }'; done |
    awk '{ t += \$1 } END { print t + 0 }')
  echo "  CPU time of this make so far: \$(( ticks / \$(getconf CLK_TCK) / 60 )) min"
fi
rss=\$(ps -C cc1plus -o rss= 2>/dev/null | sort -n | tail -n 1)
echo "  load: \$(cut -d' ' -f1-3 /proc/loadavg); compile jobs: \$(pgrep -c -x cc1plus || true), largest now \$(( \${rss:-0} / 1024 )) MiB"
EOF
}

provision() {
  mkdir -p "$LOGS"
  local stamp
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  PROVISION_LOG=$LOGS/provision-$stamp.log
  log "provisioning $HOST; output in $PROVISION_LOG"
  # Its own session, so that the controller side alone can be stopped once make runs on the host.
  setsid nice -n 19 make -C "$repo" --no-print-directory provision \
    INVENTORY="$INVENTORY_DIR/hosts.ini" HOST="$HOST" >"$PROVISION_LOG" 2>&1 </dev/null &
  PROVISION_PID=$!
}

cmd_start() {
  up
  if make_running; then
    log "make is already running on $HOST"
    lower_priority
    cmd_progress
    return
  fi
  provision
  # The role starts make in the background on the host and follows it: once make runs, the
  # controller side is stopped, and a later `start` or `finish` attaches to the same make.
  local deadline=$((SECONDS + 3600))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$PROVISION_PID" 2>/dev/null; then
      wait "$PROVISION_PID" && status=0 || status=$?
      tail -n 30 "$PROVISION_LOG" >&2
      ((status == 0)) && { log "provision finished: the build is complete"; return; }
      die "provision exited with $status before make ran; see $PROVISION_LOG"
    fi
    if grep -q 'TASK \[mxnet : Follow the build\]' "$PROVISION_LOG" && make_running; then
      kill -TERM -- "-$PROVISION_PID" 2>/dev/null || true
      wait "$PROVISION_PID" 2>/dev/null || true
      lower_priority
      log "make runs on $HOST at nice 19, idle I/O class; the controller side is stopped"
      cmd_progress
      return
    fi
    sleep 10
  done
  kill -TERM -- "-$PROVISION_PID" 2>/dev/null || true
  die "make did not start within an hour; see $PROVISION_LOG"
}

cmd_finish() {
  up
  local started=$SECONDS
  provision
  wait "$PROVISION_PID" && status=0 || status=$?
  ((status == 0)) || {
    tail -n 40 "$PROVISION_LOG" >&2
    die "provision failed ($status); see $PROVISION_LOG"
  }
  log "provision finished in $((SECONDS - started)) s"
  cmd_progress
  on_host "sudo /opt/labrig/venv/bin/python -c 'import mxnet; print(mxnet.__version__); print(mxnet.runtime.Features())'" |
    tee "$LOGS/features.txt"
  make -C "$repo" --no-print-directory verify INVENTORY="$INVENTORY_DIR/hosts.ini" HOST="$HOST" CPU_ONLY=1 |
    tee "$LOGS/verify.txt"
}

cmd_pause() {
  "$here/fleet.sh" down
}

main() {
  case ${1:-} in
    start) cmd_start ;;
    progress) cmd_progress ;;
    finish) cmd_finish ;;
    pause) cmd_pause ;;
    *)
      echo "usage: $0 start|progress|finish|pause" >&2
      exit 2
      ;;
  esac
}

# One line: bash has parsed it whole before running it, so an edit to this file (git pull) while a
# long `finish` runs does not change what it does.
main "$@"; exit $?
