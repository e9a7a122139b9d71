#!/usr/bin/env bash
# The python_runtime role's pinned CPython source for the fleet (and a lab's controller): Debian 12's
# own source package of python3.11, downloaded with apt-get from the Debian archive this machine's
# apt uses, through a private apt configuration (no change to the machine's own), into DIR
# (default: <fleet cache>/sources). Each file is checked against the sha256 the roles pin
# (roles/labrig/vars/main.yml, __labrig_python_source); a second run downloads nothing.
#   fetch-python-source.sh [DIR]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dest=${1:-${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}/sources}
python=$repo/.venv/bin/python
[[ -x $python ]] || python=python3

# "version" then "name sha256" per file, from the roles' own pin.
mapfile -t pin < <("$python" - "$repo/roles/labrig/vars/main.yml" <<'PY'
import sys, yaml
source = yaml.safe_load(open(sys.argv[1]))["__labrig_python_source"]
print(source["debian_version"])
for item in source["files"]:
    print(item["name"], item["sha256"])
PY
)
version=${pin[0]}

all_present() {
  local line name sha
  for line in "${pin[@]:1}"; do
    read -r name sha <<<"$line"
    [[ -f $dest/$name ]] && echo "$sha  $dest/$name" | sha256sum --quiet -c - 2>/dev/null || return 1
  done
}

mkdir -p "$dest"
if all_present; then
  echo "fetch-python-source: python3.11 $version is in $dest"
  exit 0
fi

# The archive URI of this machine's own Debian sources (deb822 or one-line), for a deb-src line.
uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[[ -n $uri ]] || uri=$(awk '$1 == "deb" && $3 !~ /-security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
security=$(awk '/^URIs:/ && /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[[ -n $security ]] || security=$(awk '$1 == "deb" && $3 ~ /-security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $uri && -n $security ]] || { echo "fetch-python-source: no Debian archive in this machine's apt sources" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/download"
cat >"$work/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $security bookworm-security main
LIST
apt_options=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1)
apt-get "${apt_options[@]}" -q update >"$work/update.log" 2>&1 ||
  { cat "$work/update.log" >&2; exit 1; }
(cd "$work/download" && apt-get "${apt_options[@]}" -q source --download-only "python3.11=$version") >"$work/source.log" 2>&1 ||
  { cat "$work/source.log" >&2; echo "fetch-python-source: the archive no longer has python3.11 $version; pin the one it has in roles/labrig/vars/main.yml" >&2; exit 1; }
for line in "${pin[@]:1}"; do
  read -r name sha <<<"$line"
  echo "$sha  $work/download/$name" | sha256sum --quiet -c - ||
    { echo "fetch-python-source: $name is not the file the roles pin" >&2; exit 1; }
  install -m 644 "$work/download/$name" "$dest/$name"
done
echo "fetch-python-source: python3.11 $version in $dest"
