"""The lock's unpacked files (filter_plugins/wheels.py): each `name==version --hash=sha256:` line
found in the wheelhouse by its wheel file name; a hand-edited lock line is refused whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from role_support import ROLES, load_plugin

RUNTIME = "nvidia-cuda-runtime-cu11==11.8.89 --hash=sha256:" + "a" * 64
NVRTC = "nvidia-cuda-nvrtc-cu11==11.8.89 --hash=sha256:" + "b" * 64


@pytest.fixture(scope="module")
def locked_wheels():
    return load_plugin("labrig", "filter_plugins", "wheels").labrig_locked_wheels


def test_each_pin_is_found_by_its_wheel_file_name(locked_wheels, tmp_path: Path) -> None:
    wheel = tmp_path / "nvidia_cuda_runtime_cu11-11.8.89-py3-none-manylinux2014_x86_64.whl"
    wheel.write_bytes(b"x")
    # Another version of the same wheel is not the pinned one.
    other = tmp_path / "nvidia_cuda_runtime_cu11-11.8.90-py3-none-manylinux2014_x86_64.whl"
    other.write_bytes(b"")

    found = locked_wheels([RUNTIME, NVRTC], str(tmp_path))

    assert found == [
        {
            "name": "nvidia-cuda-runtime-cu11",
            "version": "11.8.89",
            "sha256": "a" * 64,
            "glob": "nvidia_cuda_runtime_cu11-11.8.89-*.whl",
            "file": str(wheel),
        },
        {
            "name": "nvidia-cuda-nvrtc-cu11",
            "version": "11.8.89",
            "sha256": "b" * 64,
            "glob": "nvidia_cuda_nvrtc_cu11-11.8.89-*.whl",
            "file": "",
        },
    ]


@pytest.mark.parametrize(
    "line",
    [
        "nvidia-cuda-runtime-cu11==11.8.89",
        "nvidia-cuda-runtime-cu11>=11.8 --hash=sha256:" + "a" * 64,
        "nvidia-cuda-runtime-cu11==11.8.89 --hash=sha256:abc",
        "../../etc/passwd==1 --hash=sha256:" + "a" * 64,
    ],
)
def test_a_line_that_is_not_a_locked_pin_is_refused(locked_wheels, line: str) -> None:
    with pytest.raises(ValueError, match="not a locked pin"):
        locked_wheels([line], "/nonexistent")


def test_the_lock_pins_every_cuda_runtime_wheel(locked_wheels) -> None:
    lock = yaml.safe_load((ROLES / "labrig" / "files" / "pip-lock.yml").read_text())
    names = {entry["name"] for entry in locked_wheels(lock["files"]["cuda11"])}
    assert names == {
        "nvidia-cuda-runtime-cu11",
        "nvidia-cublas-cu11",
        "nvidia-cufft-cu11",
        "nvidia-curand-cu11",
        "nvidia-cusolver-cu11",
        "nvidia-cuda-nvrtc-cu11",
        "nvidia-nvtx-cu11",
    }
