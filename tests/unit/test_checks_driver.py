"""Driver checks on recorded snapshots: each failure named as a lab admin would search for it."""

from __future__ import annotations

from verify.checks import run_host_checks
from verify.checks.driver import parse_smi_csv
from verify.result import Status
from verify.values import cuda_version_text


def by_id(snapshot, expectations=None):
    results = run_host_checks(snapshot, expectations or {}, only=["driver"])
    return {item.check_id: item for item in results}


def test_healthy_driver_passes(snapshot_of):
    results = by_id(
        snapshot_of("healthy-2x-rtx3090"),
        {"driver_version": "535.216.03", "min_cuda_driver_version": "11.2"},
    )
    assert {item.status for item in results.values()} == {Status.PASSED}
    assert results["driver.cuda_version"].measurements["cuda_driver"] == "12.2"
    assert results["driver.nvidia_smi"].measurements["gpu_count"] == 2


def test_absent_expectations_are_skipped_never_passed(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["framework"]["cuda_version"] = None
    results = by_id(snapshot)
    assert results["driver.version"].status is Status.SKIPPED
    assert results["driver.version"].reason == "no expected value given"
    assert results["driver.cuda_version"].status is Status.SKIPPED


def test_cuda_requirement_falls_back_to_what_the_framework_was_built_with(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["framework"]["cuda_version"] = "12.4"
    item = by_id(snapshot)["driver.cuda_version"]
    assert item.status is Status.FAILED
    assert item.reason == "driver supports CUDA 12.2, mxnet built with 12.4"


def test_pinned_driver_version_mismatch_fails(snapshot_of):
    item = by_id(snapshot_of("healthy-2x-rtx3090"), {"driver_version": "550.127.05"})[
        "driver.version"
    ]
    assert item.status is Status.FAILED
    assert item.reason == "driver 535.216.03, expected 550.127.05"


def test_nouveau_loaded(snapshot_of):
    results = by_id(snapshot_of("nouveau-loaded"))
    assert results["driver.nouveau"].status is Status.FAILED
    assert "nouveau is loaded" in results["driver.nouveau"].reason
    assert results["driver.nvidia_module"].reason == "nvidia kernel module not loaded"
    assert results["driver.nvml"].reason == "NVML: driver not loaded (NVMLError_DriverNotLoaded)"
    assert (
        results["driver.nvidia_smi"].reason
        == "nvidia-smi exited 9: couldn't communicate with the NVIDIA driver"
    )


def test_nvml_absent(snapshot_of):
    results = by_id(snapshot_of("nvml-absent"))
    assert results["driver.nouveau"].status is Status.PASSED
    assert results["driver.nvml"].status is Status.FAILED
    assert "(NVMLError_LibraryNotFound)" in results["driver.nvml"].reason
    assert results["driver.nvidia_smi"].reason == "nvidia-smi did not run: FileNotFoundError"
    assert results["driver.version_match"].status is Status.FAILED


def test_version_mismatch_is_named_with_both_versions(snapshot_of):
    results = by_id(snapshot_of("version-mismatch"), {"driver_version": "535.216.03"})
    mismatch = results["driver.version_match"]
    assert mismatch.status is Status.FAILED
    assert mismatch.reason.startswith(
        "Driver/library version mismatch: kernel module 535.183.01, NVML library 535.216.03"
    )
    assert results["driver.nvml"].reason == (
        "NVML: Driver/library version mismatch (NVMLError_LibRmVersionMismatch)"
    )
    assert results["driver.nvidia_smi"].reason == (
        "nvidia-smi exited 18: Driver/library version mismatch"
    )
    assert results["driver.version"].status is Status.FAILED


def test_mismatch_detected_from_versions_alone(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["driver_version_file"]["value"]["kernel_module_version"] = "535.183.01"
    item = by_id(snapshot)["driver.version_match"]
    assert item.status is Status.FAILED
    assert "kernel module 535.183.01, NVML library 535.216.03" in item.reason


def test_nvidia_smi_disagreeing_with_nvml_fails(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    smi = snapshot["nvidia_smi"]
    smi["stdout"] = smi["stdout"].splitlines()[0] + "\n"
    assert by_id(snapshot)["driver.nvidia_smi"].reason == "nvidia-smi lists 1 GPU(s), NVML 2"
    smi["stdout"] = "0, NVIDIA GeForce RTX 3090\n"
    assert "CSV does not parse" in by_id(snapshot)["driver.nvidia_smi"].reason


def test_unreadable_proc_modules_fails_with_the_reason(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["modules"] = {"error": "PermissionError", "message": "denied"}
    item = by_id(snapshot)["driver.nouveau"]
    assert item.status is Status.FAILED
    assert item.reason == "cannot read /proc/modules (PermissionError: denied)"


def test_helpers():
    assert cuda_version_text(12020) == "12.2"
    assert cuda_version_text(11080) == "11.8"
    rows = parse_smi_csv("0, A, 1\n\n1, B, 2\n", ["index", "name", "x"])
    assert rows == [{"index": "0", "name": "A", "x": "1"}, {"index": "1", "name": "B", "x": "2"}]
