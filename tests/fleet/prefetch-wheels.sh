#!/usr/bin/env bash
# The controller-side wheelhouse for fleet hosts, which reach no package index: the wheels the
# roles install (MXNet's CPU and GPU wheels and their dependencies, the verify suite's dependencies,
# cuDNN 8 and NCCL 2 for the heavy host), for the hosts' Python 3.11 on manylinux x86_64.
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

with_dependencies=(
  mxnet==1.9.1 numpy==1.23.5 PyYAML nvidia-ml-py
  # The design card's GPU wheel (499 MB), installed by the heavy host.
  mxnet-cu112==1.9.1
  pip setuptools wheel
  # The PyTorch backend's CPU build (one host of the e2e installs it beside MXNet).
  torch==2.13.0
)
# cuDNN's wheel declares a cuBLAS wheel dependency (~400 MB); the hosts take cuBLAS from the CUDA
# toolkit they install, so only the cuDNN wheel itself is fetched. NCCL (148 MB) is the library
# mxnet-cu112 links that neither Debian nor the toolkit ships.
without_dependencies=(nvidia-cudnn-cu11==8.9.6.50 nvidia-nccl-cu11==2.21.5)

# LABRIG_WHEELS=cpu: only what a CPU-profile host installs (make demo), not the GPU stack's 1.3 GB.
if [[ ${LABRIG_WHEELS:-all} == cpu ]]; then
  with_dependencies=(mxnet==1.9.1 numpy==1.23.5 PyYAML nvidia-ml-py pip setuptools wheel)
  without_dependencies=()
fi

mkdir -p "$wheelhouse"
started=$SECONDS
"$python" -m pip download --quiet --dest "$wheelhouse" "${target[@]}" "${with_dependencies[@]}"
if ((${#without_dependencies[@]})); then
  "$python" -m pip download --quiet --dest "$wheelhouse" "${target[@]}" --no-deps "${without_dependencies[@]}"
fi
echo "prefetch-wheels: $wheelhouse holds $(find "$wheelhouse" -name '*.whl' | wc -l) wheels," \
  "$(du -sh "$wheelhouse" | cut -f1), checked in $((SECONDS - started)) s"
