"""The gatherer: real pynvml types and errors in, plain JSON out; the real machine recorded."""

from __future__ import annotations

import json
import types

import pynvml
import pytest

from verify import snapshot as snapshot_module
from verify.checks import run_host_checks
from verify.snapshot import GPU_QUERIES, SnapshotError, gather, gather_nvml


def _raise(code):
    def call(*_args):
        raise pynvml.NVMLError(code)

    return call


def fake_pynvml(*, clock_events_missing=False):
    """pynvml's own constants, struct types and error classes, with the C calls replaced."""
    memory = pynvml.c_nvmlMemory_t()
    memory.total, memory.free, memory.used = 24 * 2**30, 23 * 2**30, 2**30
    pci = pynvml.nvmlPciInfo_t()
    pci.busId = b"00000000:01:00.0"
    pci.busIdLegacy = b"0000:01:00.0"
    pci.pciDeviceId = 0x220410DE
    process = pynvml.c_nvmlProcessInfo_v3_t()
    process.pid, process.usedGpuMemory = 777, 2**30
    process.gpuInstanceId = process.computeInstanceId = 0xFFFFFFFF
    calls = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: "535.216.03",
        "nvmlSystemGetNVMLVersion": lambda: "12.535.216.03",
        "nvmlSystemGetCudaDriverVersion_v2": lambda: 12020,
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda index: pynvml.c_nvmlDevice_t(),
        "nvmlDeviceGetName": lambda h: "NVIDIA GeForce RTX 3090",
        "nvmlDeviceGetUUID": lambda h: "GPU-1234",
        "nvmlDeviceGetPciInfo_v3": lambda h: pci,
        "nvmlDeviceGetCudaComputeCapability": lambda h: (8, 6),
        "nvmlDeviceGetMemoryInfo": lambda h: memory,
        "nvmlDeviceGetEccMode": _raise(pynvml.NVML_ERROR_NOT_SUPPORTED),
        "nvmlDeviceGetTotalEccErrors": _raise(pynvml.NVML_ERROR_NOT_SUPPORTED),
        "nvmlDeviceGetRetiredPagesPendingStatus": _raise(pynvml.NVML_ERROR_NOT_SUPPORTED),
        "nvmlDeviceGetRemappedRows": lambda h: (0, 0, 0, 0),
        "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 8,
        "nvmlDeviceGetMaxPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 1,
        "nvmlDeviceGetMaxPcieLinkGeneration": lambda h: 4,
        "nvmlDeviceGetPersistenceMode": lambda h: 1,
        "nvmlDeviceGetTemperature": lambda h, sensor: 40 + sensor,
        "nvmlDeviceGetTemperatureThreshold": lambda h, kind: {1: 93, 0: 98}[kind],
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: pynvml.nvmlClocksEventReasonGpuIdle,
        "nvmlDeviceGetCurrentClocksThrottleReasons": lambda h: 0x40,
        "nvmlDeviceGetPowerUsage": lambda h: 21000,
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 350000,
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [
            pynvml.nvmlStructToFriendlyObject(process)
        ],
        "nvmlDeviceGetMigMode": _raise(pynvml.NVML_ERROR_NOT_SUPPORTED),
    }
    if clock_events_missing:
        calls["nvmlDeviceGetCurrentClocksEventReasons"] = _raise(
            pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
        )
    constants = {name: getattr(pynvml, name) for name in dir(pynvml) if name.isupper()}
    return types.SimpleNamespace(**constants, **calls)


def test_gpu_queries_become_plain_json():
    nvml = gather_nvml(fake_pynvml())
    gpu = nvml["gpus"][0]
    assert set(gpu) == {"index", "pcie_host", *GPU_QUERIES}
    assert gpu["nvmlDeviceGetMemoryInfo"] == {
        "value": {"total": 24 * 2**30, "free": 23 * 2**30, "used": 2**30}
    }
    assert gpu["nvmlDeviceGetPciInfo_v3"]["value"]["busId"] == "00000000:01:00.0"
    assert gpu["nvmlDeviceGetPciInfo_v3"]["value"]["pciDeviceId"] == 0x220410DE
    assert gpu["nvmlDeviceGetCudaComputeCapability"] == {"value": [8, 6]}
    assert gpu["nvmlDeviceGetRemappedRows"] == {"value": [0, 0, 0, 0]}
    assert gpu["nvmlDeviceGetEccMode"] == {
        "error": "NVMLError_NotSupported",
        "message": "Not Supported",
    }
    assert gpu["nvmlDeviceGetTemperature:GPU"] == {"value": 40}
    assert gpu["nvmlDeviceGetTemperatureThreshold:SLOWDOWN"] == {"value": 93}
    assert gpu["nvmlDeviceGetTemperatureThreshold:SHUTDOWN"] == {"value": 98}
    process = gpu["nvmlDeviceGetComputeRunningProcesses"]["value"][0]
    assert process["pid"] == 777 and process["usedGpuMemory"] == 2**30
    assert nvml["nvmlSystemGetCudaDriverVersion_v2"] == {"value": 12020}
    json.dumps(nvml)


def test_older_driver_falls_back_to_throttle_reasons():
    gpu = gather_nvml(fake_pynvml(clock_events_missing=True))["gpus"][0]
    assert gpu["nvmlDeviceGetCurrentClocksEventReasons"]["error"] == "NVMLError_FunctionNotFound"
    assert gpu["nvmlDeviceGetCurrentClocksThrottleReasons"] == {"value": 0x40}


def test_init_failure_is_recorded_with_pynvml_class_name():
    fake = fake_pynvml()
    fake.nvmlInit = _raise(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    nvml = gather_nvml(fake)
    assert nvml["nvmlInit"] == {
        "error": "NVMLError_DriverNotLoaded",
        "message": "Driver Not Loaded",
    }
    assert nvml["gpus"] == []


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.216.03  Fri Oct 25 2024\n",
            "535.216.03",
        ),
        (
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.127.05  Release Build"
            "  (dvs-builder@U16-I3-B03-4-3)  Tue Oct  8 2024\n",
            "550.127.05",
        ),
        ("something else\n", None),
    ],
)
def test_kernel_module_version_parsed(text, version):
    assert snapshot_module.parse_kernel_module_version(text) == version


def test_record_this_machine_has_the_recorded_format(fake_probe, snapshot_of):
    """The real gatherer, on whatever this machine is; synthetic fixtures share its shape."""
    real = gather("mxnet", probe=fake_probe)
    json.dumps(real)
    synthetic = snapshot_of("healthy-2x-rtx3090")
    assert set(real) == set(synthetic)
    assert real["format"] == synthetic["format"]
    for gpu in real["nvml"]["gpus"]:
        assert set(gpu) >= set(synthetic["nvml"]["gpus"][0])
    assert set(real["nvidia_smi"]) & {"returncode", "error"}
    init = real["nvml"]["nvmlInit"]
    if "error" in init:
        # No usable driver here: every GPU check must fail, naming NVML's own error.
        assert real["nvml"]["gpus"] == []
        results = run_host_checks(real, {})
        gpu_checks = [item for item in results if item.check_id.startswith("gpu.")]
        judged = [item for item in gpu_checks if item.status.value != "skipped"]
        assert len(judged) >= 8
        for item in judged:
            assert item.status.value == "failed", item
            assert f"({init['error']})" in item.reason
        nvml = next(item for item in results if item.check_id == "driver.nvml")
        assert nvml.status.value == "failed" and init["error"] in nvml.reason


def test_load_refuses_what_is_not_a_snapshot(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        snapshot_module.load(broken)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something/1"}', encoding="utf-8")
    with pytest.raises(SnapshotError, match=r"is not a labrig\.snapshot/1 snapshot"):
        snapshot_module.load(other)
    with pytest.raises(SnapshotError):
        snapshot_module.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\n',
         "Debian GNU/Linux 13 (trixie)"),
        ("NAME='Ubuntu'\nVERSION_ID=24.04\n", "Ubuntu 24.04"),
        ("# nothing here\n", None),
    ],
)  # fmt: skip
def test_the_os_release_is_named_as_the_release_names_itself(tmp_path, text, name):
    path = tmp_path / "os-release"
    path.write_text(text)
    assert snapshot_module.read_os_release(path) == name


def test_a_missing_os_release_is_none(tmp_path):
    assert snapshot_module.read_os_release(tmp_path / "absent") is None
