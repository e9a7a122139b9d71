"""The mxnet role's list of the libraries each PyPI wheel needs from the host
(roles/mxnet/vars/main.yml) is the truth about the real wheels in the fleet's wheelhouse: every
DT_NEEDED of the wheel's ELF files that the wheel does not carry itself."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml
from fleet_support import REPO, Fleet

ROLE_VARS = REPO / "roles" / "mxnet" / "vars" / "main.yml"
WHEELS = {"mxnet": "mxnet-1.9.1-*.whl", "mxnet-cu112": "mxnet_cu112-1.9.1-*.whl"}


def _needed(elf: Path) -> set[str]:
    dynamic = subprocess.run(
        ["readelf", "--dynamic", "--wide", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    return {
        line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line
    }


def host_libraries(wheel: Path, scratch: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        libraries = [name for name in archive.namelist() if ".so" in Path(name).name]
        carried = {Path(name).name for name in libraries}
        needed: set[str] = set()
        for name in libraries:
            # One at a time: libmxnet.so alone unpacks to 891 MB for the GPU wheel.
            elf = Path(archive.extract(name, scratch))
            needed |= _needed(elf)
            elf.unlink()
    return needed - carried


@pytest.mark.parametrize("package", sorted(WHEELS))
def test_role_lists_exactly_the_libraries_the_wheel_needs_from_the_host(
    fleet: Fleet, package: str, tmp_path: Path
) -> None:
    assert shutil.which("readelf"), "readelf (binutils) is needed to read the wheel's ELF files"
    wheelhouse = Path(fleet.vars["labrig_wheelhouse"])
    wheels = sorted(wheelhouse.glob(WHEELS[package]))
    assert wheels, f"no {WHEELS[package]} in {wheelhouse}: run tests/fleet/prefetch-wheels.sh"
    listed = yaml.safe_load(ROLE_VARS.read_text())["__mxnet_wheel_host_libraries"][package]

    assert sorted(host_libraries(wheels[-1], tmp_path)) == sorted(listed)


def test_nvidias_wheels_carry_every_cuda_library_the_gpu_wheel_needs(fleet: Fleet) -> None:
    """Where the release has no CUDA 11 (Debian 13, Ubuntu 24.04), the CUDA libraries mxnet-cu112
    links come from the pip lock's files.cuda11 (cuda role), cuDNN's and NCCL's wheels: each one
    is in one of those wheels, and the driver's libcuda.so.1 is the only CUDA library left to the
    OS."""
    wheelhouse = Path(fleet.vars["labrig_wheelhouse"])
    lock = yaml.safe_load((REPO / "roles" / "labrig" / "files" / "pip-lock.yml").read_text())
    patterns = [
        "{}-{}-*.whl".format(*line.split()[0].lower().replace("-", "_").split("=="))
        for line in lock["files"]["cuda11"]
    ] + ["nvidia_cudnn_cu11-8.*.whl", "nvidia_nccl_cu11-*.whl"]
    carried: set[str] = set()
    for pattern in patterns:
        wheels = sorted(wheelhouse.glob(pattern))
        assert wheels, f"no {pattern} in {wheelhouse}: run tests/fleet/prefetch-wheels.sh"
        with zipfile.ZipFile(wheels[-1]) as archive:
            carried |= {Path(name).name for name in archive.namelist() if "/lib/" in name}
    listed = yaml.safe_load(ROLE_VARS.read_text())["__mxnet_wheel_host_libraries"]["mxnet-cu112"]
    cuda = {lib for lib in listed if lib.startswith(("libcu", "libnv", "libnccl"))}

    assert cuda - carried == {"libcuda.so.1"}
