"""MXNet 1.9.1's real CUDA sources compiled by the mxnet role on the full-stack host (node1), and,
side by side, its CPU sources on the Debian 13 host (node4) with the compiler the role picks there.

The role's source path with the real source archive, `mxnet_cuda_arch: [90]`, Debian's nvcc 11.8
with g++-11 as its host compiler and cuDNN's headers from the nvidia-cudnn-cu11 wheel the cudnn
role unpacked; `mxnet_make_target` names three objects (a plain CUDA operator, convolution through
cuDNN, RNN through cuDNN's RNN API) rather than the whole library, which would take CPU-hours.
Each object must hold sm_90 SASS and compute_90 PTX. The full CUDA link of libmxnet.so is NOT
proved here. node1 keeps its pip-installed mxnet-cu112: this stage installs nothing into its venv
and writes its expectations elsewhere.

On Debian 13 (GCC 14 by default) the role builds with g++-12, the major version of Debian 12's own
GCC, with which the whole CPU build was proved: node4 compiles two of MXNet's heaviest operator
objects through the role, and three of oneDNN's (MXNet's Makefile builds oneDNN with CMake, all of
it, before any object: the objects are built here from the same tree with the same compiler), each
object's .comment naming GCC 12.

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
import threading
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
# The Debian 13 host's CPU objects: two of MXNet's heaviest operators through the role, and oneDNN
# objects through its own CMake build of the same tree (directory in the build, object target).
CPU_OBJECTS = (
    "build/src/operator/tensor/broadcast_reduce_op_value.o",
    "build/src/operator/tensor/la_op.o",
)
ONEDNN_OBJECTS = {
    "src/cpu/x64": ("jit_uni_reorder.o", "gemm/f32/jit_avx512_common_gemm_f32.o"),
    "src/common": ("primitive_attr.o",),
}
CPU_SRC_DIR = "/opt/labrig/src/mxnet-cpu-objects"
ONEDNN_BUILD = "/var/tmp/labrig-onednn-objects"
FRAMEWORK_PYTHON = "/opt/labrig/python3.11/bin/python3.11"
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


def _debian13_host(fleet: Fleet) -> str | None:
    """The first host of the inventory's debian13 group (fleet.sh writes one per release)."""
    section, hosts = "", []
    for line in Path(fleet.inventory).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "debian13" and line and not line.startswith("#"):
            hosts.append(line.split()[0])
    return hosts[0] if hosts else None


def _cpu_play(host: str, archive: Path) -> dict:
    return {
        "name": "mxnet role, source method, two of MXNet 1.9.1's heaviest CPU objects",
        "hosts": host,
        "become": True,
        "roles": [
            {
                "role": "mxnet",
                "vars": {
                    "mxnet_install_method": "source",
                    "labrig_use_cuda": False,
                    "labrig_blas": "openblas",
                    "mxnet_venv_python": FRAMEWORK_PYTHON,
                    "mxnet_source_archive": str(archive),
                    "mxnet_source_archive_sha256": PINNED["sha256"],
                    "mxnet_src_dir": CPU_SRC_DIR,
                    "mxnet_make_target": " ".join(CPU_OBJECTS),
                    "mxnet_use_mkldnn": False,
                    "mxnet_use_opencv": False,
                    "mxnet_build_log": "/var/log/labrig/mxnet-cpu-objects.log",
                    "mxnet_build_progress_interval": 15,
                    "mxnet_expectations_dir": "/var/lib/labrig/cpu-objects-expectations.d",
                },
            }
        ],
    }


def _onednn_objects(fleet: Fleet, host: str, compiler: str) -> str:
    """oneDNN's own CMake build of the tree the role unpacked, configured as MXNet's Makefile
    configures it, with the role's compiler; the named objects only."""
    gcc = compiler.replace("g++", "gcc")
    makes = " && ".join(
        f"make -C {ONEDNN_BUILD}/{folder} {' '.join(targets)}"
        for folder, targets in ONEDNN_OBJECTS.items()
    )
    built = fleet.ssh(
        host,
        f"set -e; sudo rm -rf {ONEDNN_BUILD}; "
        f"CC={gcc} CXX={compiler} cmake -S {CPU_SRC_DIR}/3rdparty/mkldnn -B {ONEDNN_BUILD} "
        "-DDNNL_BUILD_TESTS=OFF -DDNNL_BUILD_EXAMPLES=OFF -DDNNL_LIBRARY_TYPE=STATIC "
        "-DDNNL_ENABLE_JIT_PROFILING=OFF -DDNNL_ENABLE_CONCURRENT_EXEC=ON >/dev/null && "
        f"{makes} >/dev/null && "
        f"for o in $(find {ONEDNN_BUILD} -name '*.o'); do echo $o; "
        "readelf -p .comment $o | grep -o 'GCC: .*' | head -n 1; done",
        timeout=1800,
    )
    assert built.returncode == 0, built.explain()
    return built.output


_CPU: dict[str, object] = {}


def _start_debian13_cpu_objects(fleet: Fleet, archive: Path, workdir: Path) -> None:
    host = _debian13_host(fleet)
    if host is None:
        return

    def run() -> None:
        started = time.monotonic()
        try:
            _CPU["run"] = helpers.run_playbook(
                workdir, [_cpu_play(host, archive)], fleet.inventory, timeout=2400
            )
            if _CPU["run"].returncode == 0:
                _CPU["onednn"] = _onednn_objects(fleet, host, "g++-12")
        except BaseException as error:  # re-raised by the test that joins the thread
            _CPU["error"] = error
        _CPU["seconds"] = time.monotonic() - started

    _CPU["host"] = host
    _CPU["thread"] = threading.Thread(target=run, name=f"cpu objects {host}", daemon=True)
    _CPU["thread"].start()


def test_real_cuda_objects_hold_sm90_sass_and_ptx(fleet: Fleet, tmp_path: Path) -> None:
    archive = _archive(fleet)
    host = _host(fleet)
    # node4's CPU objects compile side by side (a CPU each: nvcc runs one object at a time here).
    _start_debian13_cpu_objects(fleet, archive, tmp_path / "cpu-objects")
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


def test_debian13_compiles_onednn_and_heavy_operators_with_gcc_12(fleet: Fleet) -> None:
    if "thread" not in _CPU:
        pytest.skip("no Debian 13 host in this fleet (LABRIG_FLEET_RELEASES), or no source archive")
    host = _CPU["host"]
    _CPU["thread"].join(2400)
    assert not _CPU["thread"].is_alive(), f"{host}: the CPU objects did not finish"
    assert "error" not in _CPU, _CPU["error"]
    run = _CPU["run"]
    failure = run.failure(host) or {}
    assert run.returncode == 0, "\n".join(str(failure.get(key, "")) for key in ("msg", "stderr"))
    comments = fleet.ssh(
        host,
        f"cd {CPU_SRC_DIR} && for o in {' '.join(CPU_OBJECTS)}; do echo $o; "
        "readelf -p .comment $o | grep -o 'GCC: .*' | head -n 1; done; "
        f"grep -o 'make -j[0-9]* CXX=[^ ]*' /var/log/labrig/mxnet-cpu-objects.log | head -n 1",
    )
    assert comments.returncode == 0, comments.explain()
    assert "CXX=g++-12" in comments.output, comments.explain()
    onednn = _CPU["onednn"]
    for found in (comments.output, onednn):
        gccs = [line for line in found.splitlines() if line.startswith("GCC: ")]
        assert gccs and all(" 12." in line for line in gccs), found
    built = sum(len(targets) for targets in ONEDNN_OBJECTS.values())
    assert onednn.count(".o\n") >= built, onednn
    # The host's own venv (the mxnet-cu112 wheel on CPython 3.11) is not this stage's to change.
    freeze = fleet.ssh(host, f"{VENV}/bin/python -c 'import mxnet; print(mxnet.__version__)'")
    assert freeze.returncode == 0 and "1.9.1" in freeze.output, freeze.explain()
    print(
        f"{host}: {len(CPU_OBJECTS)} MXNet and {built} oneDNN objects with g++-12 in "
        f"{_CPU['seconds']:.0f} s"
    )
