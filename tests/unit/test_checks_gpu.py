"""Per-GPU checks on recorded snapshots: one failure mode per fixture, unsupported = skipped."""

from __future__ import annotations

import pytest

from verify.checks import run_host_checks
from verify.checks.gpu import sm_supported
from verify.result import Severity, Status

HEALTH_CHECKS = [
    "gpu.xid",
    "gpu.mig",
    "gpu.ecc",
    "gpu.retired_pages",
    "gpu.row_remap",
    "gpu.pcie_width",
    "gpu.persistence",
    "gpu.temperature",
    "gpu.throttle",
    "gpu.processes",
]


def results_for(snapshot, expectations=None, only=("gpu",)):
    return run_host_checks(snapshot, expectations or {}, only=list(only))


def one(results, check_id, gpu):
    [item] = [r for r in results if r.check_id == check_id and r.gpu == gpu]
    return item


def test_healthy_geforce_pair(snapshot_of):
    results = results_for(
        snapshot_of("healthy-2x-rtx3090"),
        {
            "gpu_count": 2,
            "gpu_models": ["NVIDIA GeForce RTX 3090"],
            "mxnet_cuda_archs": [50, 60, 70, 80, 86],
        },
    )
    assert not [r for r in results if r.status is Status.FAILED]
    for gpu in (0, 1):
        # GeForce has no ECC or row remapping: reported as skipped with NVML's reason.
        for check_id in ("gpu.ecc", "gpu.row_remap", "gpu.retired_pages"):
            item = one(results, check_id, gpu)
            assert item.status is Status.SKIPPED
            assert "not supported on this GPU (NVMLError_NotSupported)" in item.reason
        for check_id in ("gpu.pcie_width", "gpu.persistence", "gpu.temperature", "gpu.throttle"):
            assert one(results, check_id, gpu).status is Status.PASSED
    assert one(results, "gpu.count", None).status is Status.PASSED


def test_healthy_workstation_pair_passes_memory_checks(snapshot_of):
    results = results_for(snapshot_of("healthy-2x-rtx-a6000"))
    for gpu in (0, 1):
        assert one(results, "gpu.ecc", gpu).status is Status.PASSED
        assert one(results, "gpu.row_remap", gpu).status is Status.PASSED
        # Ampere retired page retirement for row remapping.
        assert one(results, "gpu.retired_pages", gpu).status is Status.SKIPPED


@pytest.mark.parametrize(
    ("fixture", "check_id", "gpu", "reason"),
    [
        ("ecc-errors", "gpu.ecc", 1, "2 volatile uncorrected ECC error(s) since boot"),
        ("row-remap-pending", "gpu.row_remap", 1, "row remap pending: reset the GPU or reboot"),
        (
            "row-remap-failure",
            "gpu.row_remap",
            1,
            "row remapping failed: the GPU needs replacing (RMA)",
        ),
        (
            "pcie-x8",
            "gpu.pcie_width",
            1,
            "Gen4 x8 (card max Gen4 x16, host max Gen4 x16) at 96 % utilisation: "
            "x8 below the x16 both ends support: reseat or move the card",
        ),
        (
            "throttling",
            "gpu.throttle",
            0,
            "clocks held down by SwThermalSlowdown, HwThermalSlowdown at 97 % utilisation",
        ),
        (
            "xid-fallen-off-the-bus",
            "gpu.xid",
            1,
            "Xid 13: Graphics Engine Exception (an application fault); "
            "Xid 79: GPU has fallen off the bus: check seating, power and the PCIe slot",
        ),
        (
            "throttling",
            "gpu.temperature",
            0,
            "91 °C, within 5 °C of the 93 °C slowdown threshold",
        ),
        (
            "persistence-off",
            "gpu.persistence",
            0,
            "persistence mode off: each job pays driver start-up (enable nvidia-persistenced)",
        ),
    ],
)
def test_each_failure_fixture_fails_exactly_its_check(snapshot_of, fixture, check_id, gpu, reason):
    results = results_for(snapshot_of(fixture))
    item = one(results, check_id, gpu)
    assert item.status is Status.FAILED
    assert item.reason == reason
    others = [
        r for r in results if r.status is Status.FAILED and (r.check_id, r.gpu) != (check_id, gpu)
    ]
    if fixture == "throttling":
        others = [r for r in others if r.check_id not in ("gpu.throttle", "gpu.temperature")]
    if fixture == "persistence-off":
        others = [r for r in others if r.check_id != "gpu.persistence"]
    assert others == []


def test_persistence_is_advisory_and_does_not_block(snapshot_of):
    results = results_for(snapshot_of("persistence-off"))
    item = one(results, "gpu.persistence", 0)
    assert item.severity is Severity.ADVISORY and not item.blocking
    assert one(results, "gpu.throttle", 0).severity is Severity.REQUIRED


def test_stray_process_fails_but_our_own_pid_does_not(snapshot_of):
    snapshot = snapshot_of("stray-process")
    item = one(results_for(snapshot), "gpu.processes", 0)
    assert item.status is Status.FAILED
    assert item.reason.startswith("1 stray compute process(es) (pid 3141, 2048 MiB)")
    snapshot["pid"] = 3141
    assert one(results_for(snapshot), "gpu.processes", 0).status is Status.PASSED


def test_temperature_margin_comes_from_expectations(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["nvml"]["gpus"][0]["nvmlDeviceGetTemperature:GPU"] = {"value": 85}
    assert one(results_for(snapshot), "gpu.temperature", 0).status is Status.PASSED
    wide = results_for(snapshot, {"temperature_margin_c": 10})
    assert one(wide, "gpu.temperature", 0).status is Status.FAILED


@pytest.mark.parametrize("fixture", ["nvml-absent", "driver-not-loaded", "nouveau-loaded"])
def test_without_a_driver_every_gpu_check_fails_with_the_real_reason(snapshot_of, fixture):
    snapshot = snapshot_of(fixture)
    error = snapshot["nvml"]["nvmlInit"]["error"]
    results = results_for(snapshot, {"gpu_count": 2, "mxnet_cuda_archs": [86]})
    for check_id in [*HEALTH_CHECKS, "gpu.count", "gpu.compute_capability"]:
        item = one(results, check_id, None)
        assert item.status is Status.FAILED, check_id
        assert item.reason.startswith("NVML: ") and item.reason.endswith(f"({error})")
    assert one(results, "gpu.ecc", None).reason in (
        "NVML: driver not loaded (NVMLError_DriverNotLoaded)",
        "NVML: library libnvidia-ml.so.1 not found (no NVIDIA driver installed) "
        "(NVMLError_LibraryNotFound)",
    )


def test_cpu_only_skips_gpu_checks(snapshot_of):
    results = run_host_checks(snapshot_of("nvml-absent"), {}, cpu_only=True, only=["gpu"])
    assert {r.status for r in results} == {Status.SKIPPED}
    assert {r.reason for r in results} == {"--cpu-only: GPU checks not run"}


def test_count_and_model_expectations(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    results = results_for(snapshot, {"gpu_count": 4, "gpu_models": ["NVIDIA RTX A6000"]})
    assert one(results, "gpu.count", None).reason == "2 GPU(s), expected 4"
    model = one(results, "gpu.model", 1)
    assert model.status is Status.FAILED
    assert model.reason == "NVIDIA GeForce RTX 3090, expected one of: NVIDIA RTX A6000"


def test_compute_capability_against_the_wheel_archs(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["nvml"]["gpus"][1]["nvmlDeviceGetCudaComputeCapability"] = {"value": [9, 0]}
    results = results_for(snapshot, {"mxnet_cuda_archs": [50, 60, 70, 80, 86]})
    assert one(results, "gpu.compute_capability", 0).status is Status.PASSED
    hopper = one(results, "gpu.compute_capability", 1)
    assert hopper.status is Status.FAILED
    assert hopper.reason.startswith("sm_90 has no kernels in the MXNet build")
    assert one(results_for(snapshot), "gpu.compute_capability", None).status is Status.SKIPPED
    snapshot["framework"].update(name="torch", cuda_archs=None)
    torch = results_for(snapshot, {"mxnet_cuda_archs": [86]})
    assert one(torch, "gpu.compute_capability", None).reason == (
        "torch did not report its CUDA archs"
    )
    # torch lists its own SASS archs; mxnet_cuda_archs does not apply to it.
    snapshot["framework"]["cuda_archs"] = [50, 60, 70, 75, 80, 86, 90]
    torch = results_for(snapshot, {"mxnet_cuda_archs": [86]})
    assert one(torch, "gpu.compute_capability", 1).status is Status.PASSED
    snapshot["framework"]["cuda_archs"] = [50, 60, 70, 75, 80, 86]
    torch = results_for(snapshot)
    assert one(torch, "gpu.compute_capability", 1).reason.startswith(
        "sm_90 has no kernels in the torch build"
    )


def test_sass_compatibility_rule():
    wheel = [50, 60, 70, 80, 86]
    assert sm_supported(86, wheel) and sm_supported(89, wheel) and sm_supported(75, wheel)
    assert not sm_supported(90, wheel)
    assert not sm_supported(35, wheel)
    assert not sm_supported(80, [86])


def test_unsupported_query_never_passes(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    for gpu in snapshot["nvml"]["gpus"]:
        for key in list(gpu):
            if key != "index":
                gpu[key] = {"error": "NVMLError_NotSupported", "message": "Not Supported"}
    results = results_for(snapshot, {"gpu_models": ["x"], "mxnet_cuda_archs": [86]})
    assert {r.status for r in results if r.check_id != "gpu.count"} == {Status.SKIPPED}


def test_lost_gpu_fails_and_crashing_check_is_an_error(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["nvml"]["gpus"][1]["nvmlDeviceGetTemperature:GPU"] = {
        "error": "NVMLError_GpuIsLost",
        "message": "GPU is lost",
    }
    item = one(results_for(snapshot), "gpu.temperature", 1)
    assert item.status is Status.FAILED
    assert item.reason == "temperature: GPU is lost (fell off the bus) (NVMLError_GpuIsLost)"
    snapshot["nvml"]["gpus"][0]["nvmlDeviceGetRemappedRows"] = {"value": "garbage"}
    snapshot["nvml"]["gpus"][0]["nvmlDeviceGetEccMode"] = {"value": [1, 1]}
    crashed = one(results_for(snapshot), "gpu.row_remap", None)
    assert crashed.status is Status.ERROR and crashed.blocking
    assert crashed.reason.startswith("check crashed: ValueError")
