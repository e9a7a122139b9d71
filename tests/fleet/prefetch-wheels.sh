#!/usr/bin/env bash
# The controller-side wheelhouse for fleet hosts, which reach no package index: the wheels the
# roles install (the pip lock's sets: MXNet's CPU and GPU wheels and their dependencies, PyTorch's
# CPU build, the verify suite's dependencies; cuDNN 8 and NCCL 2 for the heavy host), for the hosts'
# Python 3.11 on manylinux x86_64.
# pip skips files already in the wheelhouse, so a second run downloads nothing.
# The inventory that fleet.sh writes points labrig_wheelhouse at this directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
wheelhouse=${LABRIG_FLEET_CACHE:-/var/cache/labrig-fleet}/wheels
python=$repo/.venv/bin/python
[[ -x $python ]] || python=python3

# Debian 12 hosts run CPython 3.11 with glibc 2.36.
target=(--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none
  --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
  --platform any)

# Exactly what the roles install (the pip lock's sets for the hosts' Python 3.11), each file checked
# against its sha256 as the hosts check it.
sets=(mxnet mxnet-cu112 source torch verify)
# cuDNN's wheel declares a cuBLAS wheel dependency (~400 MB); the hosts take cuBLAS from the CUDA
# toolkit they install, so only the cuDNN wheel itself is fetched. NCCL (148 MB) is the library
# mxnet-cu112 links that neither Debian nor the toolkit ships. Both are checked by their own sha256
# variables in the roles.
without_dependencies=(nvidia-cudnn-cu11==8.9.6.50 nvidia-nccl-cu11==2.21.5)

# LABRIG_WHEELS=cpu: only what a CPU-profile host installs (make demo), not the GPU stack's 1.3 GB.
if [[ ${LABRIG_WHEELS:-all} == cpu ]]; then
  sets=(mxnet verify)
  without_dependencies=()
fi

locked=$(mktemp)
trap 'rm -f "$locked"' EXIT
"$python" - "$repo/roles/labrig/files/pip-lock.yml" "${sets[@]}" >"$locked" <<'PY'
import sys, yaml
lock = yaml.safe_load(open(sys.argv[1]))
locks = lock["locks"]["cp311"]
lines = {line for name in sys.argv[2:] for line in locks.get(name, [])}
# NVIDIA's CUDA 11 runtime wheels, which the cuda role unpacks on a Debian 13 host.
if "mxnet-cu112" in sys.argv[2:]:
    lines |= set(lock.get("files", {}).get("cuda11", []))
print("\n".join(sorted(lines)))
PY

mkdir -p "$wheelhouse"
started=$SECONDS
"$python" -m pip download --quiet --dest "$wheelhouse" "${target[@]}" --no-deps --require-hashes -r "$locked"
if ((${#without_dependencies[@]})); then
  "$python" -m pip download --quiet --dest "$wheelhouse" "${target[@]}" --no-deps "${without_dependencies[@]}"
fi
echo "prefetch-wheels: $wheelhouse holds $(find "$wheelhouse" -name '*.whl' | wc -l) wheels," \
  "$(du -sh "$wheelhouse" | cut -f1), checked in $((SECONDS - started)) s"
