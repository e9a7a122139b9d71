"""Shared fixtures: synthetic snapshots in exactly the format `--record-snapshot` writes.

Every synthetic snapshot is built here from one healthy base and one change per failure mode, and
written to tests/fixtures/snapshots/synthetic-*.json (LABRIG_REGEN_FIXTURES=1 rewrites them; a test
keeps files and generator in step). Error entries use the class names and messages pynvml really
raises (`str(pynvml.NVMLError_NotSupported())` is "Not Supported"). Snapshots taken on real
cards are added beside them under the card's name, as recorded, never generated.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from verify.snapshot import GPU_QUERIES, SMI_QUERY_FIELDS, SNAPSHOT_FORMAT

SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "snapshots"

NOT_SUPPORTED = {"error": "NVMLError_NotSupported", "message": "Not Supported"}
DRIVER = "535.216.03"

PROC_VERSION_TEXT = (
    f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {DRIVER}  Fri Oct 25 00:07:27 UTC 2024\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)
LOADED_MODULES = ["drm", "ext4", "nvidia", "nvidia_drm", "nvidia_modeset", "nvidia_uvm", "video"]

CARDS = {
    # GeForce Ampere: no ECC, no page retirement, no row remapping through NVML.
    "rtx3090": {
        "name": "NVIDIA GeForce RTX 3090",
        "pci_device_id": 0x220410DE,
        "memory_total": 24 * 2**30,
        "ecc": False,
        "slowdown": 93,
        "shutdown": 98,
        "power_limit_mw": 350000,
    },
    # Workstation Ampere: ECC and row remapping supported.
    "rtx-a6000": {
        "name": "NVIDIA RTX A6000",
        "pci_device_id": 0x223010DE,
        "memory_total": 48 * 2**30,
        "ecc": True,
        "slowdown": 95,
        "shutdown": 98,
        "power_limit_mw": 300000,
    },
}


def _ok(value: Any) -> dict[str, Any]:
    return {"value": value}


def synthetic_gpu(card: str, index: int) -> dict[str, Any]:
    spec = CARDS[card]
    bus = 0x01 + 0x20 * index
    bus_id = f"00000000:{bus:02X}:00.0"
    gpu = {
        "index": index,
        "nvmlDeviceGetName": _ok(spec["name"]),
        "nvmlDeviceGetUUID": _ok(
            f"GPU-00000000-0000-4000-8000-{card[:4].encode().hex()}0000{index:02d}"
        ),
        "nvmlDeviceGetPciInfo_v3": _ok(
            {
                "busIdLegacy": bus_id,
                "domain": 0,
                "bus": bus,
                "device": 0,
                "pciDeviceId": spec["pci_device_id"],
                "pciSubSystemId": 0,
                "busId": bus_id,
            }
        ),
        "nvmlDeviceGetCudaComputeCapability": _ok([8, 6]),
        "nvmlDeviceGetMemoryInfo": _ok(
            {"total": spec["memory_total"], "free": spec["memory_total"] - 2**28, "used": 2**28}
        ),
        "nvmlDeviceGetEccMode": _ok([1, 1]) if spec["ecc"] else NOT_SUPPORTED,
        "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE": _ok(0)
        if spec["ecc"]
        else NOT_SUPPORTED,
        # Ampere replaced page retirement with row remapping.
        "nvmlDeviceGetRetiredPagesPendingStatus": NOT_SUPPORTED,
        "nvmlDeviceGetRemappedRows": _ok([0, 0, 0, 0]) if spec["ecc"] else NOT_SUPPORTED,
        "nvmlDeviceGetCurrPcieLinkWidth": _ok(16),
        "nvmlDeviceGetMaxPcieLinkWidth": _ok(16),
        # Idle links drop to gen 1; only the width is judged.
        "nvmlDeviceGetCurrPcieLinkGeneration": _ok(1),
        "nvmlDeviceGetMaxPcieLinkGeneration": _ok(4),
        "nvmlDeviceGetPersistenceMode": _ok(1),
        "nvmlDeviceGetTemperature:GPU": _ok(34 + index),
        "nvmlDeviceGetTemperatureThreshold:SLOWDOWN": _ok(spec["slowdown"]),
        "nvmlDeviceGetTemperatureThreshold:SHUTDOWN": _ok(spec["shutdown"]),
        # GpuIdle only: a healthy idle card.
        "nvmlDeviceGetCurrentClocksEventReasons": _ok(0x1),
        "nvmlDeviceGetPowerUsage": _ok(21000 + index * 1000),
        "nvmlDeviceGetEnforcedPowerLimit": _ok(spec["power_limit_mw"]),
        "nvmlDeviceGetComputeRunningProcesses": _ok([]),
        "nvmlDeviceGetMigMode": NOT_SUPPORTED,
        "nvmlDeviceGetSerial": _ok(f"13240210{index:05d}") if spec["ecc"] else NOT_SUPPORTED,
        "nvmlDeviceGetVbiosVersion": _ok("94.02.42.00.A9"),
        "nvmlDeviceGetTotalEccErrors:UNCORRECTED:AGGREGATE": _ok(0)
        if spec["ecc"]
        else NOT_SUPPORTED,
        "nvmlDeviceGetRetiredPages_v2:MULTIPLE_SINGLE_BIT_ECC_ERRORS": NOT_SUPPORTED,
        "nvmlDeviceGetRetiredPages_v2:DOUBLE_BIT_ECC_ERROR": NOT_SUPPORTED,
        "nvmlDeviceGetRowRemapperHistogram": _ok(
            {"max": 192, "high": 0, "partial": 0, "low": 0, "none": 0}
        )
        if spec["ecc"]
        else NOT_SUPPORTED,
        "nvmlDeviceGetGpuMaxPcieLinkGeneration": _ok(4),
        "nvmlDeviceGetUtilizationRates": _ok({"gpu": 0, "memory": 0}),
        "nvmlDeviceGetPerformanceState": _ok(8),
        # The port above the card, from sysfs: an x16 Gen4 slot.
        "pcie_host": _ok({"max_gen": 4, "max_width": 16, "source": "sysfs 0000:00:01.0"}),
    }
    expected = set(GPU_QUERIES) | {"pcie_host"}
    assert set(gpu) - {"index"} == expected, "synthetic GPU out of step with the gatherer"
    return gpu


def _smi_line(gpu: dict[str, Any]) -> str:
    cells = [
        str(gpu["index"]),
        gpu["nvmlDeviceGetName"]["value"],
        DRIVER,
        gpu["nvmlDeviceGetPciInfo_v3"]["value"]["busId"],
        str(gpu["nvmlDeviceGetMemoryInfo"]["value"]["total"] // 2**20),
        "Enabled" if gpu["nvmlDeviceGetPersistenceMode"]["value"] else "Disabled",
        str(gpu["nvmlDeviceGetCurrPcieLinkWidth"]["value"]),
        str(gpu["nvmlDeviceGetMaxPcieLinkWidth"]["value"]),
        str(gpu["nvmlDeviceGetTemperature:GPU"]["value"]),
    ]
    return ", ".join(cells)


def _smi(argv_fields=SMI_QUERY_FIELDS) -> dict[str, Any]:
    return {
        "argv": [
            "nvidia-smi",
            "--query-gpu=" + ",".join(argv_fields),
            "--format=csv,noheader,nounits",
        ],
        "fields": list(argv_fields),
    }


def refresh_smi(snapshot: dict[str, Any]) -> None:
    """Make nvidia-smi's recorded answer agree with the synthetic NVML answers."""
    lines = [_smi_line(gpu) for gpu in snapshot["nvml"]["gpus"]]
    snapshot["nvidia_smi"].update(returncode=0, stdout="\n".join(lines) + "\n", stderr="")


def healthy(card: str = "rtx3090", count: int = 2) -> dict[str, Any]:
    snapshot = {
        "format": SNAPSHOT_FORMAT,
        "recorded": "2026-11-27T09:00:00+00:00",
        "labrig_version": "0.1.0",
        "host": f"synthetic-{card}",
        "kernel": "6.1.0-27-amd64",
        "os_release": "Debian GNU/Linux 12 (bookworm)",
        "python": "3.11.2",
        "pid": 4242,
        "modules": _ok(LOADED_MODULES),
        "driver_version_file": _ok({"text": PROC_VERSION_TEXT, "kernel_module_version": DRIVER}),
        "kernel_log": _ok({"source": "journalctl -k -b", "lines": [], "lines_read": 1234}),
        "nvml": {
            "nvmlInit": _ok(None),
            "library_file": _ok(f"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{DRIVER}"),
            "nvmlSystemGetDriverVersion": _ok(DRIVER),
            "nvmlSystemGetNVMLVersion": _ok(f"12.{DRIVER}"),
            "nvmlSystemGetCudaDriverVersion_v2": _ok(12020),
            "nvmlDeviceGetCount": _ok(count),
            "gpus": [synthetic_gpu(card, index) for index in range(count)],
        },
        "nvidia_smi": _smi(),
        "framework": {
            "name": "mxnet",
            "version": "1.9.1",
            "import_error": None,
            "features": {
                "CUDA": True,
                "CUDNN": True,
                "NCCL": True,
                "BLAS_MKL": False,
                "BLAS_OPEN": True,
                "MKLDNN": True,
            },
            "num_gpus": count,
            "cuda_version": "11.2",
            "cuda_archs": None,
        },
    }
    refresh_smi(snapshot)
    return snapshot


def _no_driver(snapshot: dict[str, Any], init_error: dict[str, Any]) -> None:
    snapshot["nvml"] = {"nvmlInit": init_error, "library_file": _ok(None), "gpus": []}
    snapshot["driver_version_file"] = {
        "error": "FileNotFoundError",
        "message": "[Errno 2] No such file or directory: '/proc/driver/nvidia/version'",
    }
    snapshot["framework"]["num_gpus"] = 0


SMI_NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n\n"
)


def variant(name: str) -> dict[str, Any]:
    """One synthetic snapshot per failure mode (and the healthy bases)."""
    if name == "healthy-2x-rtx3090":
        return healthy("rtx3090")
    if name == "healthy-2x-rtx-a6000":
        return healthy("rtx-a6000")
    if name in ("ecc-errors", "row-remap-pending", "row-remap-failure"):
        snapshot = healthy("rtx-a6000")
        gpu = snapshot["nvml"]["gpus"][1]
        if name == "ecc-errors":
            gpu["nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE"] = _ok(2)
        elif name == "row-remap-pending":
            gpu["nvmlDeviceGetRemappedRows"] = _ok([0, 1, 1, 0])
        else:
            gpu["nvmlDeviceGetRemappedRows"] = _ok([0, 8, 0, 1])
        return snapshot
    snapshot = healthy("rtx3090")
    gpus = snapshot["nvml"]["gpus"]
    if name == "pcie-x8":
        # Under load, x8 in an x16 slot on an x16 card: the link trained below both ends.
        gpus[1]["nvmlDeviceGetCurrPcieLinkWidth"] = _ok(8)
        gpus[1]["nvmlDeviceGetCurrPcieLinkGeneration"] = _ok(4)
        gpus[1]["nvmlDeviceGetCurrentClocksEventReasons"] = _ok(0x0)
        gpus[1]["nvmlDeviceGetUtilizationRates"] = _ok({"gpu": 96, "memory": 40})
        gpus[1]["nvmlDeviceGetPerformanceState"] = _ok(0)
    elif name == "throttling":
        # SwThermalSlowdown | HwThermalSlowdown under load, with the SW power cap that goes
        # with load.
        gpus[0]["nvmlDeviceGetCurrentClocksEventReasons"] = _ok(0x20 | 0x40 | 0x4)
        gpus[0]["nvmlDeviceGetTemperature:GPU"] = _ok(91)
        gpus[0]["nvmlDeviceGetUtilizationRates"] = _ok({"gpu": 97, "memory": 55})
        gpus[0]["nvmlDeviceGetPerformanceState"] = _ok(0)
        gpus[0]["nvmlDeviceGetCurrPcieLinkGeneration"] = _ok(4)
    elif name == "xid-fallen-off-the-bus":
        lines = [
            "2026-11-27T08:59:01+0000 ws kernel: NVRM: Xid (PCI:0000:21:00): 13, pid=4242, "
            "name=python, Graphics Exception: ESR 0x405840=0x0",
            "2026-11-27T08:59:59+0000 ws kernel: NVRM: Xid (PCI:0000:21:00): 79, pid='<unknown>',"
            " name=<unknown>, GPU has fallen off the bus.",
        ]
        snapshot["kernel_log"] = _ok(
            {"source": "journalctl -k -b", "lines": lines, "lines_read": 1300}
        )
    elif name == "persistence-off":
        for gpu in gpus:
            gpu["nvmlDeviceGetPersistenceMode"] = _ok(0)
    elif name == "stray-process":
        gpus[0]["nvmlDeviceGetComputeRunningProcesses"] = _ok(
            [
                {
                    "pid": 3141,
                    "usedGpuMemory": 2**31,
                    "gpuInstanceId": 0xFFFFFFFF,
                    "computeInstanceId": 0xFFFFFFFF,
                }
            ]
        )
    elif name == "nouveau-loaded":
        snapshot["modules"] = _ok(["drm", "drm_kms_helper", "ext4", "nouveau", "video"])
        _no_driver(snapshot, {"error": "NVMLError_DriverNotLoaded", "message": "Driver Not Loaded"})
        snapshot["nvidia_smi"].update(returncode=9, stdout=SMI_NO_DRIVER, stderr="")
    elif name == "driver-not-loaded":
        snapshot["modules"] = _ok(["drm", "ext4", "video"])
        _no_driver(snapshot, {"error": "NVMLError_DriverNotLoaded", "message": "Driver Not Loaded"})
        snapshot["nvidia_smi"].update(returncode=9, stdout=SMI_NO_DRIVER, stderr="")
    elif name == "nvml-absent":
        snapshot["modules"] = _ok(["drm", "ext4", "video"])
        _no_driver(
            snapshot,
            {"error": "NVMLError_LibraryNotFound", "message": "NVML Shared Library Not Found"},
        )
        smi = _smi()
        smi.update(
            error="FileNotFoundError",
            message="[Errno 2] No such file or directory: 'nvidia-smi'",
        )
        snapshot["nvidia_smi"] = smi
        snapshot["framework"].update(
            version=None,
            import_error="OSError: libcuda.so.1: cannot open shared object file",
            features={},
            num_gpus=None,
        )
    elif name == "version-mismatch":
        # Userspace upgraded to 535.216.03 under a loaded 535.183.01 module, not yet rebooted.
        old = "535.183.01"
        snapshot["driver_version_file"] = _ok(
            {"text": PROC_VERSION_TEXT.replace(DRIVER, old), "kernel_module_version": old}
        )
        snapshot["nvml"] = {
            "nvmlInit": {
                "error": "NVMLError_LibRmVersionMismatch",
                "message": "RM has detected an NVML/RM version mismatch.",
            },
            "library_file": _ok(f"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{DRIVER}"),
            "gpus": [],
        }
        snapshot["nvidia_smi"].update(
            returncode=18,
            stdout="Failed to initialize NVML: Driver/library version mismatch\n"
            "NVML library version: 535.216\n",
            stderr="",
        )
    else:
        raise KeyError(name)
    if snapshot["nvml"]["gpus"] and snapshot["nvidia_smi"].get("returncode") == 0:
        refresh_smi(snapshot)
    return snapshot


VARIANTS = (
    "healthy-2x-rtx3090",
    "healthy-2x-rtx-a6000",
    "ecc-errors",
    "row-remap-pending",
    "row-remap-failure",
    "pcie-x8",
    "throttling",
    "persistence-off",
    "stray-process",
    "xid-fallen-off-the-bus",
    "nouveau-loaded",
    "driver-not-loaded",
    "nvml-absent",
    "version-mismatch",
)


def fixture_path(name: str) -> Path:
    return SNAPSHOT_DIR / f"synthetic-{name}.json"


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_path(name).read_text(encoding="utf-8"))


@pytest.fixture
def snapshot_of():
    """Load a recorded synthetic snapshot by variant name (a fresh copy per call)."""
    return lambda name: copy.deepcopy(load_fixture(name))


@pytest.fixture
def fake_probe():
    """A framework probe result without importing a framework (the adapter is tested apart)."""

    def probe(framework: str) -> dict[str, Any]:
        return {
            "name": framework,
            "version": "1.9.1" if framework == "mxnet" else "2.13.0",
            "import_error": None,
            "features": {"CUDA": False, "CUDNN": False, "BLAS_OPEN": True, "MKLDNN": True},
            "num_gpus": 0,
            "cuda_version": None,
            "cuda_archs": None,
        }

    return probe


@pytest.fixture
def synthetic_variants() -> dict[str, Any]:
    """Variant name -> (generator, fixture path): for the test that keeps them in step."""
    return {name: (lambda name=name: variant(name), fixture_path(name)) for name in VARIANTS}


@pytest.fixture
def snapshot_dir() -> Path:
    return SNAPSHOT_DIR


@pytest.fixture
def promtool() -> str:
    """Debian's promtool: the monitoring tests check their output with it. CI must have it."""
    found = shutil.which("promtool")
    if not found:
        message = "promtool is missing: install Debian's prometheus package (make setup)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found
