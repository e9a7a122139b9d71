"""MXNet 1.9.1's real CUDA sources compiled by the mxnet role on the full-stack host (node1).

The role's source path with the real source archive, `mxnet_cuda_arch: [90]`, Debian's nvcc 11.8
with g++-11 as its host compiler and cuDNN's headers from the nvidia-cudnn-cu11 wheel the cudnn
role unpacked; `mxnet_make_target` names three objects (a plain CUDA operator, convolution through
cuDNN, RNN through cuDNN's RNN API) rather than the whole library, which would take CPU-hours.
Each object must hold sm_90 SASS and compute_90 PTX. The full CUDA link of libmxnet.so is NOT
proved here. node1 keeps its pip-installed mxnet-cu112: this stage installs nothing into its venv
and writes its expectations elsewhere.

Runs after test_e2e.py (node1 then has its toolkit), and only where `<fleet cache>/sources/` holds
the pinned archive (tests/fleet/mxnet-source.yml): the tests cannot reach MXNet's repositories and
its sources are not part of labrig. Without it the stage skips, naming the file and the command
that makes it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from fleet_support import REPO, Fleet

_spec = importlib.util.spec_from_file_location(
    "labrig_role_support", REPO / "tests" / "roles" / "role_support.py"
)
helpers = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, helpers)
_spec.loader.exec_module(helpers)

PINNED = yaml.safe_load((Path(__file__).with_name("mxnet-source.yml")).read_text())
# Paths as 1.9.1's Makefile names them (CUOBJ: build/<dir>/<name>_gpu.o for src/<dir>/<name>.cu).
OBJECTS = {
    "build/src/operator/nn/fully_connected_gpu.o": (),
    "build/src/operator/nn/convolution_gpu.o": ("cudnnConvolutionForward",),
    "build/src/operator/rnn_gpu.o": ("cudnnRNN",),
}
SRC_DIR = "/opt/labrig/src/mxnet-cuda-objects"
VENV = "/opt/labrig/venv"
EXPECTATIONS = "/etc/labrig/expectations.d"
SCRATCH_EXPECTATIONS = "/var/lib/labrig/cuda-objects-expectations.d"
BUILD_LOG = "/var/log/labrig/mxnet-cuda-objects.log"


def _archive(fleet: Fleet) -> Path:
    cache = Path(
        os.environ.get("LABRIG_FLEET_CACHE") or Path(fleet.vars["labrig_wheelhouse"]).parent
    )
    archive = cache / "sources" / PINNED["archive"]
    if not archive.is_file():
        pytest.skip(
            f"NOT RUN: no {archive}, so MXNet's real CUDA sources were not compiled. Make it "
            "from a recursive 1.9.1 checkout: make mxnet-archive SRC=<checkout> "
            f"OUT={archive.parent} (tests/fleet/README.md, 'MXNet's real source')"
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert digest == PINNED["sha256"], (
        f"{archive} has sha256 {digest}, not the pinned {PINNED['sha256']} "
        "(tests/fleet/mxnet-source.yml): remake it from the checkout README.md describes"
    )
    return archive


def _host(fleet: Fleet) -> str:
    host = os.environ.get("LABRIG_FLEET_CUDA_HOST", "node1")
    assert host in fleet.hosts, f"no {host} in {fleet.inventory}"
    return host


def _toolkit(fleet: Fleet, host: str) -> dict[str, str]:
    """Where the cuda and cudnn roles put the toolkit and cuDNN's headers on the host."""
    probe = fleet.ssh(
        host,
        "set -e; . /etc/profile.d/labrig-cuda.sh; echo cuda_home=$CUDA_HOME; "
        "header=$(ls /opt/labrig/cudnn/*/nvidia/cudnn/include/cudnn.h | tail -n 1); "
        "echo cudnn_include=$(dirname $header); "
        "for tool in $CUDA_HOME/bin/cuobjdump /usr/bin/cuobjdump; do "
        "[ -x $tool ] && { echo cuobjdump=$tool; break; }; done",
    )
    assert probe.returncode == 0, f"{host} has no CUDA toolkit or cuDNN headers:\n{probe.explain()}"
    found = dict(line.split("=", 1) for line in probe.output.split() if "=" in line)
    assert {"cuda_home", "cudnn_include", "cuobjdump"} <= set(found), probe.explain()
    return found


def _play(host: str, archive: Path, toolkit: dict[str, str]) -> dict:
    include = toolkit["cudnn_include"]
    return {
        "name": "mxnet role, source method, three real 1.9.1 CUDA objects for sm_90",
        "hosts": host,
        "become": True,
        "roles": [
            {
                "role": "mxnet",
                "vars": {
                    "mxnet_install_method": "source",
                    "labrig_use_cuda": True,
                    # node1's own BLAS: Debian's intel-mkl, which the mkl role keeps under /usr.
                    "labrig_blas": "mkl",
                    "mxnet_mkl_root": "/usr",
                    "mxnet_source_archive": str(archive),
                    "mxnet_source_archive_sha256": PINNED["sha256"],
                    "mxnet_src_dir": SRC_DIR,
                    "mxnet_cuda_arch": [90],
                    "mxnet_cuda_home": toolkit["cuda_home"],
                    "mxnet_cudnn_include_dir": include,
                    "mxnet_cudnn_lib_dir": str(Path(include).parent / "lib"),
                    "mxnet_make_target": " ".join(OBJECTS),
                    # Else the objects wait for all of oneDNN (an order-only prerequisite).
                    "mxnet_use_mkldnn": False,
                    # Not needed by these objects; libopencv-dev would only cost time.
                    "mxnet_use_opencv": False,
                    "mxnet_build_log": BUILD_LOG,
                    "mxnet_build_progress_interval": 15,
                    # node1's own expectations describe its mxnet-cu112 wheel: leave them.
                    "mxnet_expectations_dir": SCRATCH_EXPECTATIONS,
                },
            }
        ],
    }


def test_real_cuda_objects_hold_sm90_sass_and_ptx(fleet: Fleet, tmp_path: Path) -> None:
    archive = _archive(fleet)
    host = _host(fleet)
    toolkit = _toolkit(fleet, host)
    marker = "/var/tmp/labrig-cuda-objects.marker"
    before = fleet.ssh(host, f"sudo touch {marker} && {VENV}/bin/python -m pip freeze --all")
    assert before.returncode == 0, before.explain()
    started = time.monotonic()

    run = helpers.run_playbook(
        tmp_path / "objects", [_play(host, archive, toolkit)], fleet.inventory, timeout=2400
    )

    seconds = time.monotonic() - started
    failure = run.failure(host) or {}
    assert run.returncode == 0, "\n".join(str(failure.get(key, "")) for key in ("msg", "stderr"))
    for path, cudnn_calls in OBJECTS.items():
        listing = fleet.ssh(
            host,
            f"cd {SRC_DIR} && {toolkit['cuobjdump']} --list-elf {path} && "
            f"{toolkit['cuobjdump']} --list-ptx {path} && nm --undefined-only {path}",
        )
        assert listing.returncode == 0, listing.explain()
        lines = listing.output.splitlines()
        elves = [line for line in lines if line.startswith("ELF file")]
        ptx = [line for line in lines if line.startswith("PTX file")]
        assert elves and all("sm_90" in line for line in elves), (path, elves)
        assert ptx and all("sm_90" in line for line in ptx), (path, ptx)
        for call in cudnn_calls:
            assert call in listing.output, f"{path} calls no {call}*: built without cuDNN?"
    after = fleet.ssh(
        host,
        f"{VENV}/bin/python -m pip freeze --all; "
        f"echo changed:; sudo find {VENV} {EXPECTATIONS} -newer {marker} -print; "
        f"sudo rm -f {marker}",
    )
    assert after.returncode == 0, after.explain()
    freeze, changed = after.output.split("changed:", 1)
    assert freeze.split() == before.output.split(), "the objects stage changed node1's venv"
    assert not changed.split(), (
        f"the objects stage wrote into node1's venv or expectations: {changed}"
    )
    print(f"{host}: {len(OBJECTS)} CUDA objects for sm_90 in {seconds:.0f} s")
