#!/usr/bin/env bash
# A local fleet of real Debian hosts (12 by default, 13 per host on request): systemd-nspawn guests
# booted with systemd, each in its own network namespace on a bridge, reaching packages only through an apt-cacher-ng on the
# bridge address, driven over SSH with host-key checking on. See tests/fleet/README.md.
#
#   fleet.sh up | down | status | ssh HOST [COMMAND...] | stop HOST | start HOST | kill HOST |
#            proxy-stop | proxy-start | throttle HOST RATE|off | inventory
#
# Environment: LABRIG_FLEET (name, default lab), LABRIG_FLEET_HOSTS (default 3),
# LABRIG_FLEET_SUBNET (a /24, default 10.203.0.0/24), LABRIG_FLEET_CACHE (default
# /var/cache/labrig-fleet), LABRIG_FLEET_RELEASES (the Debian release of hosts that are not on
# bookworm, e.g. "node4=trixie"; one base root per release in the cache), LABRIG_FLEET_MIRROR / LABRIG_FLEET_SECURITY_MIRROR (default: the
# URIs of this machine's own apt sources), LABRIG_FLEET_KEEP (hosts whose layer `down` keeps,
# e.g. node1 for a long build resumed by the next `up`; a plain `down` later removes it).
set -euo pipefail

FLEET=${LABRIG_FLEET:-lab}
HOST_COUNT=${LABRIG_FLEET_HOSTS:-3}
SUBNET=${LABRIG_FLEET_SUBNET:-10.203.0.0/24}
CACHE=${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}
STATE=/run/labrig-fleet/$FLEET
DEFAULT_SUITE=bookworm
SUITES=(bookworm trixie)
PROXY_PORT=3142
# Bump when the base recipe below changes: the cached tarball is named after it.
BASE_RECIPE=4
BASE_PACKAGES=(
  openssh-server python3 python3-apt sudo iproute2 ca-certificates
  systemd-sysv dbus libpam-systemd
  # A real workstation has a kernel: initramfs and DKMS then build for it instead of no-oping.
  linux-image-amd64
)
base_tarball() { echo "$CACHE/base-$1-r$BASE_RECIPE.tar.zst"; }
base_root() { echo "$CACHE/base-$1-r$BASE_RECIPE"; }

log() { printf 'fleet[%s]: %s\n' "$FLEET" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

validate_settings() {
  [[ $FLEET =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
    die "LABRIG_FLEET=$FLEET: use 1-8 lowercase letters/digits (it goes into interface names)"
  if ! [[ $HOST_COUNT =~ ^[1-9][0-9]?$ ]] || ((HOST_COUNT > 40)); then
    die "LABRIG_FLEET_HOSTS=$HOST_COUNT: use a number from 1 to 40"
  fi
  [[ $SUBNET =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] ||
    die "LABRIG_FLEET_SUBNET=$SUBNET: use a /24 written as A.B.C.0/24"
  NET_PREFIX=${BASH_REMATCH[1]}
  local pair host suite
  RELEASES=${LABRIG_FLEET_RELEASES:-}
  for pair in ${RELEASES//,/ }; do
    [[ $pair =~ ^node([0-9]+)=([a-z]+)$ ]] || die "LABRIG_FLEET_RELEASES: '$pair' is not nodeN=SUITE"
    host=${BASH_REMATCH[1]}
    suite=${BASH_REMATCH[2]}
    ((host >= 1 && host <= HOST_COUNT)) || die "LABRIG_FLEET_RELEASES: no node$host in a fleet of $HOST_COUNT"
    [[ " ${SUITES[*]} " == *" $suite "* ]] || die "LABRIG_FLEET_RELEASES: $suite is not one of: ${SUITES[*]}"
  done
  BRIDGE_ADDRESS=$NET_PREFIX.1
  BRIDGE=lr$FLEET-br
  PROXY_URL=http://$BRIDGE_ADDRESS:$PROXY_PORT
  INVENTORY=$STATE/inventory.ini
  SSH_KEY=$STATE/id_ed25519
  KNOWN_HOSTS=$STATE/known_hosts
}

node_name() { echo "node$1"; }
node_address() { echo "$NET_PREFIX.$((10 + $1))"; }
node_netns() { echo "labrig-$FLEET-node$1"; }
node_veth() { echo "lr$FLEET-$1"; }
node_root() { echo "$STATE/roots/node$1"; }
node_layer() { echo "$CACHE/layers/$FLEET/node$1"; }
node_suite() {
  local pair
  for pair in ${RELEASES//,/ }; do
    [[ $pair == "node$1="* ]] && { echo "${pair#*=}"; return; }
  done
  echo "$DEFAULT_SUITE"
}
node_index() {
  if ! [[ ${1:-} =~ ^node([0-9]+)$ ]] || ((BASH_REMATCH[1] < 1 || BASH_REMATCH[1] > HOST_COUNT)); then
    die "no host '${1:-}' in fleet $FLEET (hosts: node1..node$HOST_COUNT)"
  fi
  echo "${BASH_REMATCH[1]}"
}

require_root() {
  ((EUID == 0)) || die "needs root (network namespaces, overlay mounts, systemd-nspawn); run: sudo $0 $*"
  local tool
  for tool in debootstrap systemd-nspawn apt-cacher-ng zstd ip ssh-keygen ssh-keyscan; do
    command -v "$tool" >/dev/null || die "$tool missing: run tests/fleet/install-host-packages.sh"
  done
}

# The mirror comes from this machine's own apt configuration, so the repository never names one.
apt_source_uri() {
  local want_security=$1 file
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f $file ]] || continue
    awk -v want="$want_security" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uri = ""; security = 0; deb = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uri = u[1] }
          if ($i ~ /^Suites:/ && $i ~ /-security/) security = 1
          if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) deb = 1
        }
        if (deb && uri != "" && security == want) { print uri; exit }
      }' "$file"
  done | head -n 1
  if [[ -f /etc/apt/sources.list ]]; then
    if [[ $want_security == 1 ]]; then
      awk '$1 == "deb" && $3 ~ /-security/ { print $2; exit }' /etc/apt/sources.list
    else
      awk '$1 == "deb" && $3 !~ /-security/ { print $2; exit }' /etc/apt/sources.list
    fi
  fi
}

resolve_mirrors() {
  MIRROR=${LABRIG_FLEET_MIRROR:-$(apt_source_uri 0 | head -n 1)}
  SECURITY_MIRROR=${LABRIG_FLEET_SECURITY_MIRROR:-$(apt_source_uri 1 | head -n 1)}
  [[ -n $MIRROR ]] || die "no Debian mirror in /etc/apt/sources*; set LABRIG_FLEET_MIRROR"
  [[ -n $SECURITY_MIRROR ]] || die "no security mirror in /etc/apt/sources*; set LABRIG_FLEET_SECURITY_MIRROR"
  [[ $MIRROR == http://* && $SECURITY_MIRROR == http://* ]] ||
    die "the apt cache can only proxy http:// mirrors; set LABRIG_FLEET_MIRROR and LABRIG_FLEET_SECURITY_MIRROR"
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
read_pid() { if [[ -f $1 ]]; then cat "$1"; fi; }

# --- network -----------------------------------------------------------------------------------

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    if ip -o addr show | grep -q "inet $BRIDGE_ADDRESS/"; then
      die "$BRIDGE_ADDRESS is already on another interface; pick another LABRIG_FLEET_SUBNET"
    fi
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_ADDRESS/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

ensure_netns() {
  local index=$1 netns veth
  netns=$(node_netns "$index")
  veth=$(node_veth "$index")
  [[ -e /run/netns/$netns ]] || ip netns add "$netns"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$netns"
    ip -n "$netns" addr add "$(node_address "$index")/24" dev eth0
  fi
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$netns" link set lo up
  ip -n "$netns" link set eth0 up
}

# --- package cache -----------------------------------------------------------------------------

# True when process $1 holds the listening socket on the bridge address: another apt-cacher-ng on
# 0.0.0.0 would otherwise answer in its place, and this one would stay alive without a socket.
proxy_listening() {
  ss -Hltnp "sport = :$PROXY_PORT" 2>/dev/null | grep -F "$BRIDGE_ADDRESS:$PROXY_PORT" |
    grep -q "pid=$1,"
}

# apt-cacher-ng 3.7 was seen to segfault here under three hosts' downloads (kernel log:
# "apt-cacher-ng[...]: segfault ... in libc.so.6"), and every apt call of every host then hung
# until CI's time ran out. Its supervisor starts it again, as a service manager would.
supervise_proxy() {
  local config=$STATE/apt-cacher-ng child='' rc stopping=0
  trap 'stopping=1; [[ -n $child ]] && kill -TERM "$child" 2>/dev/null' TERM INT
  while ((stopping == 0)); do
    apt-cacher-ng -c "$config" </dev/null &
    child=$!
    echo "$child" >"$STATE/apt-cacher-ng.child.pid"
    rc=0
    while pid_alive "$child"; do wait "$child" && rc=0 || rc=$?; done
    child=
    echo "proxy supervisor: apt-cacher-ng exited with $rc at $(date -u +%FT%TZ)"
    ((stopping == 0)) && sleep 1
  done
}

ensure_apt_cache() {
  local pid config=$STATE/apt-cacher-ng
  pid=$(read_pid "$STATE/apt-cacher-ng.pid")
  if pid_alive "$pid"; then
    proxy_listening "$(read_pid "$STATE/apt-cacher-ng.child.pid")" && return
    kill -TERM "$pid"
  fi
  if ss -Hltn "sport = :$PROXY_PORT" | grep -qE "(0\.0\.0\.0|\*|\[::\]):$PROXY_PORT"; then
    die "another program listens on port $PROXY_PORT on every address (the packaged apt-cacher-ng?); stop it"
  fi
  mkdir -p "$config" "$STATE/apt-cacher-ng-log" "$CACHE/apt-cacher-ng"
  # The packaged Debian backend names a mirror that may not resolve here ("503 Host not found").
  printf '%s\n' "${MIRROR%/}/" >"$config/backends_debian"
  cat >"$config/acng.conf" <<CONF
CacheDir: $CACHE/apt-cacher-ng
LogDir: $STATE/apt-cacher-ng-log
SupportDir: /usr/lib/apt-cacher-ng
Port: $PROXY_PORT
BindAddress: $BRIDGE_ADDRESS
SocketPath: $config/socket
PidFile: $config/pid
ForeGround: 1
VerboseLog: 1
ExThreshold: 4
Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian
Remap-secdeb: security.debian.org security.debian.org/debian-security /debian-security ; ${SECURITY_MIRROR%/}
CONF
  rm -f "$STATE/apt-cacher-ng.child.pid"
  setsid "$0" _proxy </dev/null >>"$STATE/apt-cacher-ng-log/daemon.out" 2>&1 &
  echo $! >"$STATE/apt-cacher-ng.pid"
  local waited
  for waited in $(seq 50); do
    pid=$(read_pid "$STATE/apt-cacher-ng.pid")
    proxy_listening "$(read_pid "$STATE/apt-cacher-ng.child.pid")" && return
    pid_alive "$pid" || break
    sleep 0.2
  done
  die "apt-cacher-ng did not start on $BRIDGE_ADDRESS:$PROXY_PORT (waited ${waited}x0.2s); see $STATE/apt-cacher-ng-log"
}

# --- base root ---------------------------------------------------------------------------------

guest_sources() {
  local suite=$1
  cat <<SOURCES
Types: deb
URIs: ${MIRROR%/}
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${SECURITY_MIRROR%/}
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
}

# Runs inside a private mount namespace so the chroot's proc/sys/dev mounts vanish with it.
chroot_install() {
  local root=$1 suite=$2
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --rbind /dev "$root/dev"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -f "$root/etc/apt/sources.list"
  guest_sources "$suite" >"$root/etc/apt/sources.list.d/debian.sources"
  local -a in_root=(env DEBIAN_FRONTEND=noninteractive "http_proxy=$PROXY_URL" chroot "$root")
  "${in_root[@]}" apt-get update -q
  "${in_root[@]}" apt-get dist-upgrade -y -q
  "${in_root[@]}" apt-get install -y -q --no-install-recommends "${BASE_PACKAGES[@]}"
  "${in_root[@]}" useradd --create-home --shell /bin/bash labrig
  printf 'labrig ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$root/etc/sudoers.d/labrig"
  chmod 440 "$root/etc/sudoers.d/labrig"
  "${in_root[@]}" apt-get clean
  rm -f "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/*
  # An empty list directory with a fresh mtime makes Ansible's cache_valid_time skip the update.
  touch -d @0 "$root/var/lib/apt/lists"
  # Each host gets its own identity when it is created.
  rm -f "$root"/etc/ssh/ssh_host_*
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
}

release_group() {
  case $1 in
    bookworm) echo debian12 ;;
    trixie) echo debian13 ;;
  esac
}

# The releases the fleet's hosts run, each once.
fleet_suites() {
  local index
  for ((index = 1; index <= HOST_COUNT; index++)); do node_suite "$index"; done | sort -u
}

ensure_base() {
  local suite=$1 tarball root log=$STATE/debootstrap-$1.log
  tarball=$(base_tarball "$suite")
  root=$(base_root "$suite")
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.base-$suite.lock"
  flock 9
  if [[ ! -f $tarball ]]; then
    local build=$CACHE/base-build-$suite.$$ started=$SECONDS
    rm -rf "$build"
    log "building the Debian $suite base root (debootstrap, once per cache)"
    http_proxy=$PROXY_URL debootstrap --variant=minbase "$suite" "$build" "$MIRROR" >"$log" 2>&1 ||
      die "debootstrap failed; see $log"
    unshare --mount --propagation private "$0" _chroot_install "$build" "$suite" \
      >>"$log" 2>&1 || die "installing the base packages failed; see $log"
    tar --numeric-owner --xattrs -C "$build" -cf - . | zstd -q -T1 -3 -o "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    mv "$build" "$root"
    log "base root built in $((SECONDS - started)) s: $tarball ($(du -h "$tarball" | cut -f1))"
  elif [[ ! -f $root/etc/os-release ]]; then
    rm -rf "$root" "$root.tmp"
    mkdir -p "$root.tmp"
    zstd -q -dc "$tarball" | tar --numeric-owner --xattrs -C "$root.tmp" -xf -
    mv "$root.tmp" "$root"
  fi
  flock -u 9
  exec 9>&-
}

# Every release's base, side by side (a cold cache builds each with debootstrap).
ensure_bases() {
  local suite pids=() pid status=0
  for suite in $(fleet_suites); do
    ensure_base "$suite" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  ((status == 0)) || die "a base root could not be made"
}

# --- hosts -------------------------------------------------------------------------------------

ensure_ssh_key() {
  [[ -f $SSH_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C "labrig-fleet-$FLEET" -f "$SSH_KEY"
}

# Per-host identity and settings, written into the host's own overlay layer before first boot.
personalise_root() {
  local index=$1 root name
  root=$(node_root "$index")
  name=$(node_name "$index")
  if [[ -f $root/etc/labrig-fleet-host ]]; then
    # A layer kept across `down` (LABRIG_FLEET_KEEP): the fleet's key is new, its identity is not.
    authorise_key "$root"
    keep_user_manager "$root"
    return
  fi
  echo "$name" >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >"$root/etc/hosts"
  tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
  ssh-keygen -q -A -f "$root" >/dev/null
  # A timeout, so that a proxy restarted by its supervisor fails an in-flight request instead of
  # leaving apt waiting on it for ever.
  printf 'Acquire::http::Proxy "%s";\nAcquire::http::Timeout "60";\n' "$PROXY_URL" \
    >"$root/etc/apt/apt.conf.d/01proxy"
  authorise_key "$root"
  keep_user_manager "$root"
  echo "$FLEET $name $(node_suite "$index") r$BASE_RECIPE" >"$root/etc/labrig-fleet-host"
}

# The login user's systemd manager stays up between SSH sessions (lingering). Seen on Debian 13
# under nspawn: when the last session closes, stopping user@1000.service cannot kill its cgroup
# ("Processes still around after final SIGKILL") and takes 90 s, and a new SSH session waits for
# it all that time, so Ansible's first sudo timed out. A real host kills it at once.
keep_user_manager() {
  install -d -m 755 "$1/var/lib/systemd/linger"
  touch "$1/var/lib/systemd/linger/labrig"
}

authorise_key() {
  local root=$1 home
  for home in root home/labrig; do
    install -d -m 700 "$root/$home/.ssh"
    install -m 600 "$SSH_KEY.pub" "$root/$home/.ssh/authorized_keys"
  done
  chroot "$root" chown -R labrig:labrig /home/labrig/.ssh
}

# Keep the layer of a host named in LABRIG_FLEET_KEEP (commas or spaces between names)?
kept() {
  local keep=${LABRIG_FLEET_KEEP:-}
  [[ " ${keep//,/ } " == *" $1 "* ]]
}

ensure_overlay() {
  local index=$1 root layer suite
  root=$(node_root "$index")
  layer=$(node_layer "$index")
  suite=$(node_suite "$index")
  mkdir -p "$root" "$layer/upper" "$layer/work"
  # A kept layer holds the changes made over one base: over another it would be a mixed system.
  local identity=$layer/upper/etc/labrig-fleet-host
  if [[ -f $identity ]] && [[ $(cat "$identity") != *" $suite r$BASE_RECIPE" ]]; then
    die "$(node_name "$index")'s kept layer $layer was made over another base ($(cat "$identity")); remove it with a plain 'fleet.sh down'"
  fi
  mountpoint -q "$root" ||
    mount -t overlay overlay -o "lowerdir=$(base_root "$suite"),upperdir=$layer/upper,workdir=$layer/work" "$root"
}

# The supervisor: one loop per host that boots the guest again when it reboots (exit 133).
# Seen here: now and then a guest's systemd wedges halfway through a shutdown (it cannot kill a
# unit's cgroup under nspawn: "Failed to kill control group ... Input/output error") and never
# exits, so a reboot never comes back. A guest whose sshd has been gone for a minute is taken to
# be wedged: its init is killed and the supervisor boots it again, as the reboot asked.
watch_for_wedge() {
  local guest=$1 marker=$2 init missing=0
  while pid_alive "$guest"; do
    init=$(pgrep -P "$guest" -o 2>/dev/null || true)
    if [[ -n $init ]] && ! pgrep --ns "$init" --nslist pid -x sshd >/dev/null 2>&1; then
      missing=$((missing + 1))
      if ((missing >= 30)); then
        echo "supervisor: guest wedged (no sshd for 60 s) at $(date -u +%FT%TZ); killing its init"
        touch "$marker"
        kill -KILL "$init" 2>/dev/null
        return
      fi
    else
      missing=0
    fi
    sleep 2
  done
}

supervise() {
  local index=$1 root name netns rc guest='' watchdog wedged
  root=$(node_root "$index")
  name=$(node_name "$index")
  netns=$(node_netns "$index")
  wedged=$STATE/$name.wedged
  # SIGTERM to the supervisor becomes SIGTERM to nspawn, which powers the guest off cleanly.
  trap 'stopping=1; [[ -n $guest ]] && kill -TERM "$guest" 2>/dev/null' TERM INT
  stopping=0
  while ((stopping == 0)); do
    rm -f "$wedged"
    systemd-nspawn --boot --register=no --keep-unit --quiet \
      --directory="$root" --machine="$FLEET-$name" --hostname="$name" \
      --network-namespace-path="/run/netns/$netns" \
      --resolv-conf=off --timezone=off --link-journal=no --console=passive &
    guest=$!
    echo "$guest" >"$STATE/$name.nspawn.pid"
    watch_for_wedge "$guest" "$wedged" &
    watchdog=$!
    rc=0
    # wait returns early when a trapped signal arrives; wait again for the guest to finish.
    while pid_alive "$guest"; do wait "$guest" && rc=0 || rc=$?; done
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    guest=
    rm -f "$STATE/$name.nspawn.pid"
    echo "supervisor: guest exited with $rc at $(date -u +%FT%TZ)"
    if [[ -e $wedged ]]; then
      rm -f "$wedged"
      rc=133
    fi
    ((rc == 133)) || break
  done
}

start_node() {
  local index=$1 name pid
  name=$(node_name "$index")
  pid=$(read_pid "$STATE/$name.pid")
  pid_alive "$pid" && return
  ensure_netns "$index"
  ensure_overlay "$index"
  personalise_root "$index"
  setsid "$0" _supervise "$index" </dev/null >>"$STATE/$name.console.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

wait_for_ssh() {
  local index=$1 address name deadline=$((SECONDS + 120)) keys
  address=$(node_address "$index")
  name=$(node_name "$index")
  while ((SECONDS < deadline)); do
    keys=$(ssh-keyscan -T 2 -t ed25519 "$address" 2>/dev/null || true)
    if [[ -n $keys ]]; then
      # The key must be the one this harness generated: check it rather than trusting first use.
      local expected
      expected=$(cut -d' ' -f1,2 "$(node_root "$index")/etc/ssh/ssh_host_ed25519_key.pub")
      [[ ${keys#* } == "$expected" ]] || die "$name answered with an unexpected host key"
      return
    fi
    pid_alive "$(read_pid "$STATE/$name.pid")" || die "$name stopped while booting; see $STATE/$name.console.log"
    sleep 1
  done
  die "$name did not answer SSH on $address within 120 s; see $STATE/$name.console.log"
}

write_known_hosts() {
  local index tmp=$KNOWN_HOSTS.tmp
  : >"$tmp"
  for ((index = 1; index <= HOST_COUNT; index++)); do
    local pub
    for pub in "$(node_root "$index")"/etc/ssh/ssh_host_*_key.pub; do
      printf '%s %s\n' "$(node_address "$index")" "$(cut -d' ' -f1,2 "$pub")" >>"$tmp"
    done
  done
  mv "$tmp" "$KNOWN_HOSTS"
}

write_inventory() {
  local index tmp=$INVENTORY.tmp
  {
    echo "# Written by tests/fleet/fleet.sh for fleet '$FLEET'; rewritten on every 'up'."
    echo "[fleet]"
    for ((index = 1; index <= HOST_COUNT; index++)); do
      echo "$(node_name "$index") ansible_host=$(node_address "$index")"
    done
    # A group per release, named as the roles name platforms (labrig_platform_id).
    local suite
    for suite in $(fleet_suites); do
      echo
      echo "[$(release_group "$suite")]"
      for ((index = 1; index <= HOST_COUNT; index++)); do
        [[ $(node_suite "$index") == "$suite" ]] && node_name "$index"
      done
    done
    echo
    echo "[fleet:vars]"
    echo "ansible_user=labrig"
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "ansible_ssh_private_key_file=$SSH_KEY"
    echo "ansible_ssh_common_args='-o UserKnownHostsFile=$KNOWN_HOSTS -o StrictHostKeyChecking=yes'"
    echo "labrig_apt_proxy=$PROXY_URL"
    echo "labrig_wheelhouse=$CACHE/wheels"
    # The pinned CPython's source (fetch-python-source.sh), and its builds kept across runs.
    echo "python_runtime_source_dir=$CACHE/sources"
    echo "python_runtime_artifact_cache=$CACHE/artifacts/python"
  } >"$tmp"
  mv "$tmp" "$INVENTORY"
}

save_or_check_config() {
  local config="hosts=$HOST_COUNT subnet=$SUBNET cache=$CACHE base=r$BASE_RECIPE releases=${RELEASES//[ ,]/+}"
  if [[ -f $STATE/config ]]; then
    [[ $(cat "$STATE/config") == "$config" ]] ||
      die "fleet $FLEET is up as '$(cat "$STATE/config")', not '$config'; run 'fleet.sh down' first"
  else
    echo "$config" >"$STATE/config"
  fi
}

# Each guest's systemd takes ~10 inotify instances; the kernel's default of 128 per user stops
# the guests from about the 19th on ("Failed to allocate manager object: Too many open files").
# Raised for the running kernel only, and only when a fleet this size needs it.
ensure_inotify_instances() {
  local wanted=$((64 + 16 * HOST_COUNT)) current
  current=$(cat /proc/sys/fs/inotify/max_user_instances)
  if ((current < wanted)); then
    log "raising fs.inotify.max_user_instances from $current to $wanted for $HOST_COUNT guests"
    echo "$wanted" >/proc/sys/fs/inotify/max_user_instances
  fi
}

cmd_up() {
  require_root up
  resolve_mirrors
  ensure_inotify_instances
  mkdir -p "$STATE" "$STATE/roots"
  save_or_check_config
  local started=$SECONDS index
  # Only the inventory path goes to stdout: callers capture it.
  {
    ensure_bridge
    ensure_apt_cache
    ensure_bases
    ensure_ssh_key
    for ((index = 1; index <= HOST_COUNT; index++)); do start_node "$index"; done
    for ((index = 1; index <= HOST_COUNT; index++)); do wait_for_ssh "$index"; done
    write_known_hosts
    write_inventory
  } >&2
  log "up: $HOST_COUNT hosts in $((SECONDS - started)) s; inventory: $INVENTORY"
  echo "$INVENTORY"
}

stop_node() {
  local index=$1 name pid guest waited
  name=$(node_name "$index")
  pid=$(read_pid "$STATE/$name.pid")
  if pid_alive "$pid"; then
    kill -TERM "$pid"
    # A loaded 2-core machine can take a while to run a guest's shutdown.
    for waited in $(seq 450); do
      pid_alive "$pid" || break
      sleep 0.2
    done
    if pid_alive "$pid"; then
      log "$name did not power off in 90 s; killing it"
      guest=$(read_pid "$STATE/$name.nspawn.pid")
      pid_alive "$guest" && kill -KILL "$guest"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
    fi
  fi
  rm -f "$STATE/$name.pid" "$STATE/$name.nspawn.pid"
}

# A power cut: the supervisor first (it would boot the guest again), then the guest's init, which
# takes every process of the guest with it at once; nothing shuts down. The disk keeps what was
# written (the host's kernel still holds it), as a journaling filesystem would after the cut.
kill_node() {
  local index=$1 name pid guest init
  name=$(node_name "$index")
  pid=$(read_pid "$STATE/$name.pid")
  guest=$(read_pid "$STATE/$name.nspawn.pid")
  pid_alive "$pid" && kill -KILL "$pid"
  if pid_alive "$guest"; then
    init=$(pgrep -P "$guest" -o 2>/dev/null || true)
    [[ -n $init ]] && kill -KILL "$init"
    for _ in $(seq 100); do
      pid_alive "$guest" || break
      sleep 0.1
    done
    pid_alive "$guest" && kill -KILL "$guest"
  fi
  rm -f "$STATE/$name.pid" "$STATE/$name.nspawn.pid"
  log "$name: power cut"
}

# The package mirror going away: the apt cache's supervisor and the cache itself stop (every guest
# then gets "connection refused"); proxy-start brings it back on the same address.
stop_proxy() {
  local pid
  pid=$(read_pid "$STATE/apt-cacher-ng.pid")
  if pid_alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 50); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    pid_alive "$pid" && kill -KILL "$pid"
  fi
  pid=$(read_pid "$STATE/apt-cacher-ng.child.pid")
  pid_alive "$pid" && kill -KILL "$pid"
  rm -f "$STATE/apt-cacher-ng.pid" "$STATE/apt-cacher-ng.child.pid"
  return 0
}

# A slow link to one host (what it downloads comes at RATE, e.g. 8mbit): long enough downloads
# for a test to act while one is in flight. "off" takes the limit away.
throttle_node() {
  local index=$1 rate=$2 veth
  veth=$(node_veth "$index")
  tc qdisc del dev "$veth" root 2>/dev/null || true
  [[ $rate == off ]] && return
  [[ $rate =~ ^[1-9][0-9]*[km]bit$ ]] || die "throttle: give a rate like 8mbit, or off"
  tc qdisc add dev "$veth" root tbf rate "$rate" burst 32kbit latency 400ms
}

cmd_down() {
  require_root down
  local index
  if [[ ! -d $STATE ]]; then
    # The layers a `down` kept go with the next plain one.
    for ((index = 1; index <= HOST_COUNT; index++)); do
      kept "$(node_name "$index")" || rm -rf "$(node_layer "$index")"
    done
    rmdir "$CACHE/layers/$FLEET" 2>/dev/null || true
    log "not up"
    return
  fi
  for ((index = 1; index <= HOST_COUNT; index++)); do stop_node "$index" & done
  wait
  for ((index = 1; index <= HOST_COUNT; index++)); do
    local root
    root=$(node_root "$index")
    if mountpoint -q "$root"; then umount "$root" || umount -l "$root"; fi
    ip link del "$(node_veth "$index")" 2>/dev/null || true
    [[ -e /run/netns/$(node_netns "$index") ]] && ip netns del "$(node_netns "$index")"
    # A host's layer can hold gigabytes (a CUDA toolkit): it goes with the fleet, unless kept.
    if kept "$(node_name "$index")"; then
      log "kept $(node_name "$index")'s layer: $(node_layer "$index")"
    else
      rm -rf "$(node_layer "$index")"
    fi
  done
  rmdir "$CACHE/layers/$FLEET" 2>/dev/null || true
  stop_proxy
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  # Consoles and cache logs outlive the fleet, for the post-mortem of a failed CI run.
  rm -rf "$CACHE/logs/$FLEET"
  mkdir -p "$CACHE/logs/$FLEET"
  cp -r "$STATE"/*.log "$STATE/apt-cacher-ng-log" "$CACHE/logs/$FLEET/" 2>/dev/null || true
  rm -rf "$STATE"
  log "down"
}

cmd_status() {
  if [[ ! -f $STATE/config ]]; then
    echo "fleet $FLEET: down"
    return 3
  fi
  echo "fleet $FLEET: $(cat "$STATE/config"); inventory $INVENTORY"
  local index name state all_up=0
  pid_alive "$(read_pid "$STATE/apt-cacher-ng.pid")" && state=running || state=stopped
  echo "  apt-cacher-ng  $BRIDGE_ADDRESS:$PROXY_PORT  $state"
  for ((index = 1; index <= HOST_COUNT; index++)); do
    name=$(node_name "$index")
    if pid_alive "$(read_pid "$STATE/$name.pid")"; then state=running; else
      state=stopped
      all_up=1
    fi
    printf '  %-13s  %-15s  %s  %s\n' "$name" "$(node_address "$index")" "$state" \
      "$(du -sh "$(node_layer "$index")" 2>/dev/null | cut -f1) in its layer"
  done
  return "$all_up"
}

cmd_ssh() {
  local index
  index=$(node_index "${1:-}")
  shift
  exec ssh -i "$SSH_KEY" -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
    -o BatchMode=yes "labrig@$(node_address "$index")" "$@"
}

# Commands other than `up` act on the fleet as it was brought up, whatever the environment says.
load_config() {
  [[ -f $STATE/config ]] || return 0
  local setting settings
  read -r -a settings <"$STATE/config"
  for setting in "${settings[@]}"; do
    case $setting in
      hosts=*) HOST_COUNT=${setting#hosts=} ;;
      subnet=*) SUBNET=${setting#subnet=} ;;
      cache=*) CACHE=${setting#cache=} ;;
      releases=*)
        LABRIG_FLEET_RELEASES=${setting#releases=}
        LABRIG_FLEET_RELEASES=${LABRIG_FLEET_RELEASES//+/ }
        ;;
    esac
  done
}

main() {
  local command=${1:-}
  shift || true
  [[ $command == up ]] || load_config
  validate_settings
  case $command in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    ssh) cmd_ssh "$@" ;;
    inventory) echo "$INVENTORY" ;;
    stop)
      require_root stop
      stop_node "$(node_index "${1:-}")"
      ;;
    start)
      require_root start
      resolve_mirrors
      local index
      index=$(node_index "${1:-}")
      start_node "$index"
      wait_for_ssh "$index"
      ;;
    kill)
      require_root kill
      kill_node "$(node_index "${1:-}")"
      ;;
    throttle)
      require_root throttle
      throttle_node "$(node_index "${1:-}")" "${2:-}"
      ;;
    proxy-stop)
      require_root proxy-stop
      stop_proxy
      log "apt cache stopped"
      ;;
    proxy-start)
      require_root proxy-start
      resolve_mirrors
      ensure_apt_cache
      log "apt cache started"
      ;;
    _supervise) supervise "$1" ;;
    _proxy) supervise_proxy ;;
    _chroot_install)
      resolve_mirrors
      chroot_install "$1" "$2"
      ;;
    *)
      echo "usage: $0 up|down|status|ssh HOST [COMMAND...]|stop HOST|start HOST|kill HOST|proxy-stop|proxy-start|throttle HOST RATE|off|inventory" >&2
      exit 2
      ;;
  esac
}

# One line: bash has parsed it whole before running it, so a supervisor that lives for days never
# reads on into a copy of this file that changed under it (git pull) when main returns.
main "$@"; exit $?
