"""The pip path with the GPU wheel: only the wheel asked for is copied, NCCL comes from the wheel
or NVIDIA's repository, a bad NCCL wheel stops before any copy, and the wheel's libraries are
checked against the host's dynamic linker before the 500 MB wheel moves."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from role_support import DEBIAN12, ROLES, UBUNTU22, run_tasks

MXNET = ROLES / "mxnet"
NCCL_WHEEL = "nvidia_nccl_cu11-2.21.5-py3-none-manylinux2014_x86_64.whl"
WHEELHOUSE_FILES = [
    "mxnet-1.9.1-py3-none-manylinux2014_x86_64.whl",
    "mxnet_cu112-1.9.1-py3-none-manylinux2014_x86_64.whl",
    "numpy-1.23.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    NCCL_WHEEL,
]


def _with_role_defaults(hosts: dict[str, dict]) -> dict[str, dict]:
    # Host vars over the roles' defaults, as Ansible layers them (include_vars would win over both).
    defaults = {}
    for role in ("labrig", "mxnet"):
        defaults |= yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    return {host: {**defaults, **values} for host, values in hosts.items()}


# mxnet's vars and those of the labrig role it depends on (where `auto` is resolved).
ROLE_VARS = [
    {
        "name": f"Vars of {role}",
        "ansible.builtin.include_vars": {"file": str(ROLES / role / "vars" / "main.yml")},
    }
    for role in ("labrig", "mxnet")
]


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    for name in WHEELHOUSE_FILES:
        (folder / name).write_bytes(b"not a real wheel")
    return folder


def test_nccl_comes_from_the_wheel_on_every_platform(tmp_path: Path, wheelhouse: Path) -> None:
    # Also where CUDA comes from NVIDIA's repository (Ubuntu 22.04): that repository names its
    # libnccl2 builds by the CUDA release they were built with, and carries no 2.21.5+cuda11.0.
    hosts = {
        "debian": {"labrig_platform": DEBIAN12, "labrig_wheelhouse": str(wheelhouse)},
        "ubuntu": {"labrig_platform": UBUNTU22},
        "forced": {"labrig_platform": UBUNTU22, "mxnet_nccl_method": "repo"},
    }
    run = run_tasks(
        tmp_path,
        ROLE_VARS,
        _with_role_defaults(hosts),
        report_vars=(
            "labrig_nccl_method",
            "labrig_nccl_wheel_file",
            "__mxnet_nccl_lib_dir",
            "mxnet_nccl_apt_version",
        ),
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.value("debian", "labrig_nccl_method") == "wheel"
    assert run.value("debian", "labrig_nccl_wheel_file") == str(wheelhouse / NCCL_WHEEL)
    assert run.value("debian", "__mxnet_nccl_lib_dir") == "/opt/labrig/nccl/2.21.5/nvidia/nccl/lib"
    assert run.value("ubuntu", "labrig_nccl_method") == "wheel"
    assert run.value("forced", "labrig_nccl_method") == "repo"


def test_a_host_receives_only_the_mxnet_wheel_it_installs(tmp_path: Path, wheelhouse: Path) -> None:
    common = {"labrig_wheelhouse": str(wheelhouse), "mxnet_install_method": "pip"}
    hosts = {
        "gpu": {**common, "labrig_use_cuda": True, "mxnet_wheel_cache": str(tmp_path / "gpu")},
        "cpu": {**common, "labrig_use_cuda": False, "mxnet_wheel_cache": str(tmp_path / "cpu")},
        "source": {
            **common,
            "mxnet_install_method": "source",
            "labrig_use_cuda": False,
            "mxnet_wheel_cache": str(tmp_path / "src"),
        },
    }
    tasks = [
        {
            "name": "Copy",
            "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "wheels.yml"},
        }
    ]

    run = run_tasks(tmp_path, tasks, hosts)

    assert run.returncode == 0, run.stdout[-3000:]
    copied = {
        host: sorted(p.name.split("-")[0] for p in (tmp_path / folder).iterdir())
        for host, folder in (("gpu", "gpu"), ("cpu", "cpu"), ("source", "src"))
    }
    assert copied == {
        "gpu": ["mxnet_cu112", "numpy"],
        "cpu": ["mxnet", "numpy"],
        "source": ["numpy"],
    }

    # A host whose cache holds them gets nothing; --check on a fresh one says it would copy.
    fresh = {**hosts, "fresh": {**common, "mxnet_wheel_cache": str(tmp_path / "fresh")}}
    again = run_tasks(tmp_path / "again", tasks, hosts)
    checked = run_tasks(tmp_path / "checked", tasks, fresh, extra_args=("--check",))

    unpack = "mxnet : Unpack them into the host's wheel cache"
    assert again.returncode == 0 and checked.returncode == 0, checked.stdout[-3000:]
    assert again.result("cpu", unpack).get("skipped") is True, again.stdout[-3000:]
    assert checked.result("fresh", unpack).get("changed") or checked.result("fresh", unpack).get(
        "failed"
    )
    assert not (tmp_path / "fresh").exists()
    assert not list(Path(tempfile.gettempdir()).glob("*.labrig-wheels.tar"))


@pytest.mark.parametrize(
    ("content", "wanted"),
    [
        (b"tampered", "has sha256"),
        (None, "no nvidia_nccl_cu11-2.21.5-*.whl in labrig_wheelhouse"),
    ],
)
def test_a_bad_or_missing_nccl_wheel_stops_before_anything_is_copied(
    tmp_path: Path, wheelhouse: Path, content: bytes | None, wanted: str
) -> None:
    nccl = wheelhouse / NCCL_WHEEL
    if content is None:
        nccl.unlink()
    else:
        nccl.write_bytes(content)
    cache = tmp_path / "cache"
    hosts = {
        "gpu": {
            "labrig_wheelhouse": str(wheelhouse),
            "mxnet_wheel_cache": str(cache),
            "mxnet_nccl_prefix": str(tmp_path / "nccl"),
        }
    }
    tasks = [
        {
            "name": "NCCL",
            "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "nccl.yml"},
        }
    ]

    run = run_tasks(tmp_path, tasks, hosts)

    assert run.returncode != 0
    message = run.failure_message("gpu") or ""
    assert wanted in message, run.stdout[-3000:]
    assert not cache.exists() and not (tmp_path / "nccl").exists()


def test_the_library_check_names_each_missing_library_and_what_brings_it(tmp_path: Path) -> None:
    # This machine has no CUDA 11 stack: the GPU wheel's CUDA libraries cannot resolve, while the
    # CPU wheel's (glibc, libstdc++, libgomp, libquadmath) do.
    hosts = {"gpu": {"mxnet_pip_package": "mxnet-cu112"}, "cpu": {"mxnet_pip_package": "mxnet"}}
    tasks = [
        {
            "name": "Libraries",
            "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "libraries.yml"},
        }
    ]

    run = run_tasks(tmp_path, tasks, hosts)

    assert run.failure("cpu") is None, run.stdout[-3000:]
    message = run.failure_message("gpu") or ""
    assert "mxnet-cu112 1.9.1 links libraries the dynamic linker cannot find" in message, message
    assert "libnccl.so.2 (NCCL 2 (mxnet_nccl_method))" in message
    assert "libcudnn.so.8 (cuDNN 8 (cudnn role))" in message
    assert (
        "libcudart.so.11.0 (the CUDA 11 runtime"
        " (cuda role; the cu11 wheels where the release has no CUDA 11))" in message
    )
    assert "libc.so.6" not in message
