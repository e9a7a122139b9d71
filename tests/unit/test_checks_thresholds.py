"""NVIDIA's published limits (retired pages, row remapping), the Xid catalogue, load-aware link and
throttle judgements, and the rule that no check passes what it has no data for."""

from __future__ import annotations

import copy

import pytest

from verify.checks import CATALOGUE, run_host_checks
from verify.checks.gpu import RETIRED_PAGES_RMA, retired_pages_verdict
from verify.checks.xid import normalise_bus, parse_xid_lines
from verify.result import Status


def one(results, check_id, gpu):
    [item] = [r for r in results if r.check_id == check_id and r.gpu == gpu]
    return item


def judged(snapshot, check_id, gpu=0):
    return one(run_host_checks(snapshot, {}, only=[check_id]), check_id, gpu)


def pages(count, timestamp=None):
    return {"value": [{"address": n, "timestamp": timestamp} for n in range(count)]}


@pytest.fixture
def v100(snapshot_of):
    """A pre-Ampere data-centre card: page retirement instead of row remapping."""
    snapshot = snapshot_of("healthy-2x-rtx-a6000")
    gpu = snapshot["nvml"]["gpus"][0]
    gpu["nvmlDeviceGetRetiredPagesPendingStatus"] = {"value": 0}
    gpu["nvmlDeviceGetRetiredPages_v2:MULTIPLE_SINGLE_BIT_ECC_ERRORS"] = pages(0)
    gpu["nvmlDeviceGetRetiredPages_v2:DOUBLE_BIT_ECC_ERROR"] = pages(0)
    return snapshot


def set_pages(snapshot, sbe, dbe):
    gpu = snapshot["nvml"]["gpus"][0]
    gpu["nvmlDeviceGetRetiredPages_v2:MULTIPLE_SINGLE_BIT_ECC_ERRORS"] = sbe
    gpu["nvmlDeviceGetRetiredPages_v2:DOUBLE_BIT_ECC_ERROR"] = dbe


def test_retired_pages_fail_at_nvidias_rma_limit_not_only_when_pending(v100):
    set_pages(v100, pages(40), pages(RETIRED_PAGES_RMA - 41))
    item = judged(v100, "gpu.retired_pages")
    assert item.status is Status.PASSED
    assert item.reason == "none pending; 40 SBE + 22 DBE page(s) retired, below the RMA limits"
    set_pages(v100, pages(40), pages(RETIRED_PAGES_RMA - 40))
    item = judged(v100, "gpu.retired_pages")
    assert item.status is Status.FAILED
    assert item.reason == "63 pages retired, at NVIDIA's RMA limit of 63: the GPU qualifies for RMA"


def test_many_dbe_pages_fail_only_while_they_keep_coming(v100):
    now = 1_764_000_000
    v100["recorded"] = "2025-11-24T16:00:00+00:00"
    assert v100["recorded"]  # the snapshot's time is the "now" of the rate
    old = pages(16, timestamp=now - 60 * 86400)
    set_pages(v100, pages(0), old)
    assert judged(v100, "gpu.retired_pages").status is Status.PASSED
    recent = {"value": old["value"][:14] + pages(2, timestamp=now - 86400)["value"]}
    set_pages(v100, pages(0), recent)
    item = judged(v100, "gpu.retired_pages")
    assert item.status is Status.FAILED and "2 more in the last week" in item.reason
    assert retired_pages_verdict([], recent["value"], None) is None


def test_pending_retirement_fails_with_the_counts(v100):
    v100["nvml"]["gpus"][0]["nvmlDeviceGetRetiredPagesPendingStatus"] = {"value": 1}
    set_pages(v100, pages(0), pages(2))
    item = judged(v100, "gpu.retired_pages")
    assert item.status is Status.FAILED
    assert (
        item.reason
        == "page retirement pending (0 SBE + 2 DBE page(s) retired): reset the GPU or reboot"
    )


def test_row_remap_counts_at_the_rma_limit_fail_without_the_flag(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx-a6000")
    snapshot["nvml"]["gpus"][0]["nvmlDeviceGetRemappedRows"] = {"value": [3, 512, 0, 0]}
    item = judged(snapshot, "gpu.row_remap")
    assert item.status is Status.FAILED and "RMA limit of 512" in item.reason
    snapshot["nvml"]["gpus"][0]["nvmlDeviceGetRemappedRows"] = {"value": [3, 5, 0, 0]}
    snapshot["nvml"]["gpus"][0]["nvmlDeviceGetRowRemapperHistogram"] = {
        "value": {"max": 180, "high": 8, "partial": 2, "low": 1, "none": 1}
    }
    item = judged(snapshot, "gpu.row_remap")
    assert item.status is Status.PASSED
    assert item.reason == "no remap pending (8 rows remapped); 1 bank(s) have no spare row left"


def test_xid_lines_of_every_driver_format_and_their_gpu():
    lines = [
        "[  269.517039] NVRM: Xid (0000:01:00): 3, C 00000005 SC 00000007 M 00001ffc Data ffffffff",
        "May 18 19:02:39 kernel: NVRM: Xid (PCI:0000:2b:00): 79, GPU has fallen off the bus.",
        "NVRM: Xid (PCI:0001:c1:00.0): 48, pid=1234, name=python, An uncorrectable DBE",
        "kernel: nvidia-modeset: not an Xid",
    ]
    events = parse_xid_lines(lines)
    assert [(e["bus"], e["xid"]) for e in events] == [
        ("0000:01:00", 3),
        ("0000:2b:00", 79),
        ("0001:c1:00", 48),
    ]
    assert normalise_bus("00000000:2B:00.0") == "0000:2b:00"


def with_xids(snapshot, *lines):
    snapshot["kernel_log"] = {"value": {"source": "dmesg", "lines": list(lines), "lines_read": 9}}
    return snapshot


@pytest.mark.parametrize(
    ("xid", "status", "words"),
    [
        (13, Status.PASSED, "application faults only"),
        (31, Status.PASSED, "GPU memory page fault"),
        (48, Status.FAILED, "double-bit ECC error"),
        (63, Status.FAILED, "reset the GPU to activate it"),
        (64, Status.FAILED, "recording failure"),
        (74, Status.FAILED, "NVLink error"),
        (79, Status.FAILED, "fallen off the bus"),
        (92, Status.FAILED, "high single-bit ECC error rate"),
        (94, Status.FAILED, "contained ECC error"),
        (95, Status.FAILED, "uncontained ECC error"),
        (119, Status.FAILED, "GSP RPC timeout"),
        (120, Status.FAILED, "GSP error"),
        (999, Status.FAILED, "not in this suite's excerpt"),
    ],
)
def test_xid_classified_from_the_catalogue(snapshot_of, xid, status, words):
    line = f"NVRM: Xid (PCI:0000:21:00): {xid}, pid=1, name=x, message"
    results = run_host_checks(
        with_xids(snapshot_of("healthy-2x-rtx3090"), line), {}, only=["gpu.xid"]
    )
    assert one(results, "gpu.xid", 0).status is Status.PASSED
    item = one(results, "gpu.xid", 1)
    assert item.status is status and words in item.reason and f"Xid {xid}" in item.reason


def test_xid_on_a_gpu_nvml_no_longer_lists_fails_the_host(snapshot_of):
    line = "NVRM: Xid (PCI:0000:41:00): 79, GPU has fallen off the bus."
    results = run_host_checks(
        with_xids(snapshot_of("healthy-2x-rtx3090"), line), {}, only=["gpu.xid"]
    )
    item = one(results, "gpu.xid", None)
    assert item.status is Status.FAILED
    assert item.reason.startswith("on 0000:41:00, a device NVML does not list now: Xid 79")


def test_unreadable_kernel_log_is_skipped_with_the_reason(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["kernel_log"] = {
        "error": "PermissionError",
        "message": "dmesg exited 1: dmesg: read kernel buffer failed: Operation not permitted",
    }
    item = one(run_host_checks(snapshot, {}, only=["gpu.xid"]), "gpu.xid", None)
    assert item.status is Status.SKIPPED and "Operation not permitted" in item.reason


def test_idle_x8_is_healthy_and_under_load_only_a_link_below_both_ends_fails(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    gpu = snapshot["nvml"]["gpus"][0]
    gpu["nvmlDeviceGetCurrPcieLinkWidth"] = {"value": 8}
    assert judged(snapshot, "gpu.pcie_width").status is Status.PASSED  # idle, Gen1
    gpu["nvmlDeviceGetUtilizationRates"] = {"value": {"gpu": 99, "memory": 50}}
    gpu["nvmlDeviceGetCurrentClocksEventReasons"] = {"value": 0}
    gpu["nvmlDeviceGetCurrPcieLinkGeneration"] = {"value": 4}
    # An x8 slot: the link runs at what both ends allow.
    gpu["pcie_host"] = {"value": {"max_gen": 4, "max_width": 8, "source": "sysfs"}}
    item = judged(snapshot, "gpu.pcie_width")
    assert item.status is Status.PASSED
    assert item.reason.startswith("Gen4 x8 (card max Gen4 x16, host max Gen4 x8) at 99 %")
    # A Gen3 host: Gen3 is all the link can do.
    gpu["pcie_host"] = {"value": {"max_gen": 3, "max_width": 16, "source": "sysfs"}}
    gpu["nvmlDeviceGetCurrPcieLinkWidth"] = {"value": 16}
    gpu["nvmlDeviceGetCurrPcieLinkGeneration"] = {"value": 3}
    assert judged(snapshot, "gpu.pcie_width").status is Status.PASSED
    # Under load below what both ends support.
    gpu["nvmlDeviceGetCurrPcieLinkGeneration"] = {"value": 2}
    item = judged(snapshot, "gpu.pcie_width")
    assert item.status is Status.FAILED and "Gen2 below the Gen3 both ends support" in item.reason


def test_a_slowdown_seen_once_at_idle_is_reported_under_load_it_fails(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    gpu = snapshot["nvml"]["gpus"][0]
    gpu["nvmlDeviceGetCurrentClocksEventReasons"] = {"value": 0x1 | 0x80}
    item = judged(snapshot, "gpu.throttle")
    assert item.status is Status.PASSED
    assert item.reason.startswith("HwPowerBrakeSlowdown seen once at idle: reported, not failed")
    gpu["nvmlDeviceGetCurrentClocksEventReasons"] = {"value": 0x8}
    gpu["nvmlDeviceGetUtilizationRates"] = {"value": {"gpu": 80, "memory": 10}}
    item = judged(snapshot, "gpu.throttle")
    assert item.status is Status.FAILED
    assert item.reason == "clocks held down by HwSlowdown at 80 % utilisation"


def test_driver_nvml_cannot_pass_without_its_inputs(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    del snapshot["nvml"]["nvmlInit"]
    item = one(run_host_checks(snapshot, {}, only=["driver.nvml"]), "driver.nvml", None)
    assert item.status is Status.FAILED and "nvmlInit not in the snapshot" in item.reason
    snapshot = snapshot_of("healthy-2x-rtx3090")
    del snapshot["nvml"]["nvmlDeviceGetCount"]
    item = one(run_host_checks(snapshot, {}, only=["driver.nvml"]), "driver.nvml", None)
    assert item.status is Status.FAILED and "cannot count GPUs" in item.reason


def test_no_check_passes_when_its_inputs_are_absent(snapshot_of):
    """Every check, on a snapshot whose every recorded answer is missing or empty."""
    full = snapshot_of("healthy-2x-rtx3090")
    emptied = copy.deepcopy(full)
    for key in ("modules", "driver_version_file", "kernel_log", "nvidia_smi", "framework"):
        emptied[key] = {}
    emptied["nvml"] = {"gpus": [{"index": 0}, {"index": 1}]}
    expectations = {
        "gpu_count": 2,
        "driver_version": "535.216.03",
        "gpu_models": ["NVIDIA GeForce RTX 3090"],
        "mxnet_cuda_archs": [86],
        "mxnet_features": {"CUDA": True},
        "min_cuda_driver_version": "11.2",
    }
    results = run_host_checks(emptied, expectations)
    assert {spec.check_id for spec in CATALOGUE} == {r.check_id for r in results}
    passed = [(r.check_id, r.gpu, r.reason) for r in results if r.status is Status.PASSED]
    assert passed == []
