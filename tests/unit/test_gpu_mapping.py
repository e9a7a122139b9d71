"""NVML GPU -> CUDA device mapping, workloads attributed to the right card, the link and the
clocks judged under load, copy floors held to the link the host allows. No GPU here: the CUDA
driver, NVML's sampler and the GPU itself are stood in for (MXNet on the CPU plays gpu(N))."""

from __future__ import annotations

import ctypes

import pytest
from test_workloads import CpuStandingInForGpu, run_stand_in

from verify import cli, frameworks
from verify.cuda_devices import CudaTarget, list_cuda_devices, map_gpus
from verify.pcie import Link
from verify.result import Status
from verify.workloads import spec
from verify.workloads.spec import GpuContext

NVML = [
    {
        "index": 0,
        "uuid": "GPU-aaaaaaaa-0000-0000-0000-000000000000",
        "pci_bus_id": "00000000:01:00.0",
    },
    {
        "index": 1,
        "uuid": "GPU-bbbbbbbb-0000-0000-0000-000000000000",
        "pci_bus_id": "00000000:41:00.0",
    },
]


def cuda_listing(*devices):
    return {
        "value": [
            {"ordinal": n, "pci_bus_id": bus, "uuid": uuid} for n, (bus, uuid) in enumerate(devices)
        ]
    }


def test_fastest_first_cuda_order_is_mapped_back_by_bus_id():
    # CUDA's default order put the faster card at 41:00 first.
    cuda = cuda_listing(
        ("0000:41:00.0", "GPU-bbbbbbbb-0000-0000-0000-000000000000"), ("0000:01:00.0", "x")
    )
    targets = map_gpus(NVML, cuda)
    assert (targets[0].ordinal, targets[1].ordinal) == (1, 0)
    assert targets[0].pci_bus_id == "00000000:01:00.0" and targets[0].why_not is None


def test_identical_anonymised_uuids_are_told_apart_by_bus_id():
    same = "GPU-12345678-aaaa-bbbb-cccc-0123456789ab"
    nvml = [dict(gpu, uuid=same) for gpu in NVML]
    cuda = cuda_listing(("0000:01:00.0", same), ("0000:41:00.0", same))
    assert [t.ordinal for t in map_gpus(nvml, cuda).values()] == [0, 1]
    # Without a bus id match a shared UUID is no identity at all.
    cuda = cuda_listing(("0000:02:00.0", same))
    assert {t.ordinal for t in map_gpus(nvml, cuda).values()} == {None}


def test_cuda_visible_devices_hides_and_renumbers():
    cuda = cuda_listing(("0000:41:00.0", "GPU-bbbbbbbb-0000-0000-0000-000000000000"))
    targets = map_gpus(NVML, cuda, visible="1")
    assert targets[1].ordinal == 0
    assert (
        targets[0].hidden and targets[0].why_not == "not visible to CUDA (CUDA_VISIBLE_DEVICES=1)"
    )


def test_a_host_whose_mapping_cannot_be_established_says_why():
    targets = map_gpus(NVML, {"error": "OSError", "message": "libcuda.so.1: cannot open"})
    assert targets[0].ordinal is None and not targets[0].hidden
    assert "the CUDA driver cannot list its devices (OSError: libcuda.so.1" in targets[0].why_not
    targets = map_gpus(NVML, cuda_listing(("0000:81:00.0", "GPU-cccc")))
    assert targets[1].why_not == (
        "no CUDA device has its bus id 00000000:41:00.0 or UUID "
        "GPU-bbbbbbbb-0000-0000-0000-000000000000 (CUDA lists: 0000:81:00.0)"
    )


class FakeLibcuda:
    """The five driver API calls list_cuda_devices makes, answering through ctypes pointers."""

    def __init__(self, buses, fail_init=0):
        self.buses, self.fail_init = buses, fail_init

    def cuInit(self, flags):
        return self.fail_init

    def cuGetErrorName(self, code, name):
        name._obj.value = b"CUDA_ERROR_NO_DEVICE"
        return 0

    def cuDeviceGetCount(self, count):
        count._obj.value = len(self.buses)
        return 0

    def cuDeviceGet(self, handle, ordinal):
        handle._obj.value = ordinal
        return 0

    def cuDeviceGetPCIBusId(self, buffer, length, handle):
        buffer.value = self.buses[handle.value].encode()
        return 0

    def cuDeviceGetUuid_v2(self, raw, handle):
        ctypes.memmove(raw, bytes(range(16)), 16)
        return 0


def test_libcuda_is_read_for_bus_ids_and_uuids():
    listed = list_cuda_devices(lambda name: FakeLibcuda(["0000:41:00.0", "0000:01:00.0"]))
    assert listed == {
        "value": [
            {
                "ordinal": 0,
                "pci_bus_id": "0000:41:00.0",
                "uuid": "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f",
            },
            {
                "ordinal": 1,
                "pci_bus_id": "0000:01:00.0",
                "uuid": "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f",
            },
        ]
    }
    failed = list_cuda_devices(lambda name: FakeLibcuda([], fail_init=100))
    assert failed == {"error": "CudaError", "message": "cuInit: CUDA_ERROR_NO_DEVICE"}

    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    assert list_cuda_devices(missing)["error"] == "OSError"


def test_the_cli_maps_snapshot_gpus_and_sets_the_pci_bus_order(snapshot_of, monkeypatch):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    devices = snapshot["nvml"]["gpus"]
    cuda = cuda_listing(("0000:21:00.0", "u1"), ("0000:01:00.0", "u0"))
    contexts = cli.gpu_contexts(
        devices, list_devices=lambda: cuda, sampler_for=lambda bus: bus, environ={}
    )
    assert {i: c.target.ordinal for i, c in contexts.items()} == {0: 1, 1: 0}
    assert contexts[1].sampler == "00000000:21:00.0"
    assert contexts[0].card == Link(4, 16) and contexts[0].host == Link(4, 16)


# --- the workloads on their mapped device ---------------------------------------------------------


GEN4_X16 = Link(4, 16)


def context(index, ordinal, *, sampler=None, card=GEN4_X16, host=GEN4_X16, **target):
    uuid = f"GPU-{index:08d}"
    bus = f"00000000:{index + 1:02x}:00.0"
    return GpuContext(CudaTarget(index, ordinal, uuid, bus, **target), "x", card, host, sampler)


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(frameworks, "get_adapter", lambda name: CpuStandingInForGpu())
    monkeypatch.setattr(spec, "GPU_PERF", spec.CPU_PERF)


def test_results_are_attributed_to_uuid_and_bus_id_on_the_mapped_device(stand_in):
    contexts = {0: context(0, 1), 1: context(1, 0)}
    results = run_stand_in(only={"workload.smoke.elementwise"}, contexts=contexts)
    by_gpu = {r.gpu: r for r in results}
    assert by_gpu[0].framework["device"] == "gpu(1)" and by_gpu[1].framework["device"] == "gpu(0)"
    assert by_gpu[0].measurements["gpu_uuid"] == "GPU-00000000"
    assert by_gpu[0].measurements["pci_bus_id"] == "00000000:01:00.0"
    assert by_gpu[0].measurements["cuda_device"] == 1
    assert by_gpu[0].status is Status.PASSED


def test_an_unmapped_gpu_fails_every_check_and_a_hidden_one_is_skipped(stand_in):
    contexts = {
        0: context(0, None, why_not="no CUDA device has its bus id"),
        1: context(1, None, why_not="not visible to CUDA (CUDA_VISIBLE_DEVICES=0)", hidden=True),
    }
    results = run_stand_in(only={"workload.smoke"}, contexts=contexts)
    assert {r.status for r in results if r.gpu == 0} == {Status.FAILED}
    assert {r.status for r in results if r.gpu == 1} == {Status.SKIPPED}
    first = next(r for r in results if r.gpu == 0)
    assert (
        first.reason == "NVML GPU 0 (00000000:01:00.0, GPU-00000000): no CUDA device has its bus id"
    )


def sampler(gen, width, reasons=0):
    return lambda: {"gen": gen, "width": width, "reasons": reasons, "util": 99}


UNDER_LOAD = {"workload.perf.gemm_fp32", "workload.perf.pcie_link", "workload.perf.throttle"}


def test_a_link_below_what_both_ends_support_fails_under_load(stand_in):
    contexts = {0: context(0, 0, sampler=sampler(4, 8))}
    results = {
        r.check_id: r for r in run_stand_in(gpu_indices=[0], only=UNDER_LOAD, contexts=contexts)
    }
    link = results["workload.perf.pcie_link"]
    assert link.status is Status.FAILED
    assert link.reason.startswith("Gen4 x8 (card max Gen4 x16, host max Gen4 x16) under load")
    assert link.reason.endswith("x8 below the x16 both ends support: reseat or move the card")
    assert results["workload.perf.throttle"].status is Status.PASSED


def test_an_x8_slot_or_a_gen3_host_is_not_a_failure(stand_in):
    contexts = {
        0: context(0, 0, sampler=sampler(4, 8), host=Link(4, 8)),
        1: context(1, 1, sampler=sampler(3, 16), card=Link(4, 16), host=Link(3, 16)),
    }
    results = run_stand_in(
        only={"workload.perf.gemm_fp32", "workload.perf.pcie_link"}, contexts=contexts
    )
    links = {r.gpu: r for r in results if r.check_id == "workload.perf.pcie_link"}
    assert links[0].status is Status.PASSED and links[1].status is Status.PASSED
    assert links[1].reason.startswith("Gen3 x16 (card max Gen4 x16, host max Gen3 x16) under load")


def test_a_slowdown_seen_repeatedly_under_load_fails(stand_in, monkeypatch):
    # The CPU's small GEMM is over before a second sample at the real interval.
    monkeypatch.setattr(spec, "LOAD_SAMPLE_INTERVAL_S", 0.0)
    contexts = {0: context(0, 0, sampler=sampler(4, 16, reasons=0x40 | 0x4))}
    results = {
        r.check_id: r for r in run_stand_in(gpu_indices=[0], only=UNDER_LOAD, contexts=contexts)
    }
    throttle = results["workload.perf.throttle"]
    assert throttle.status is Status.FAILED
    assert throttle.reason.startswith("clocks held down by HwThermalSlowdown in ")


def test_nothing_sampled_is_never_a_pass(stand_in):
    contexts = {0: context(0, 0, sampler=sampler(4, 16))}
    results = run_stand_in(gpu_indices=[0], only={"workload.perf.pcie_link"}, contexts=contexts)
    assert [(r.status, r.reason) for r in results] == [
        (Status.SKIPPED, "nothing sampled under load: the GEMM checks did not run")
    ]

    def broken():
        raise RuntimeError("NVML: GPU is lost")

    contexts = {0: context(0, 0, sampler=broken)}
    results = {
        r.check_id: r for r in run_stand_in(gpu_indices=[0], only=UNDER_LOAD, contexts=contexts)
    }
    link = results["workload.perf.pcie_link"]
    assert link.status is Status.FAILED and "RuntimeError: NVML: GPU is lost" in link.reason


def test_copy_floors_follow_the_link_the_host_allows(stand_in):
    h100 = {0: "NVIDIA H100 80GB HBM3"}
    contexts = {0: context(0, 0, card=Link(5, 16), host=Link(4, 8))}
    (copy,) = run_stand_in(
        gpu_indices=[0], only={"workload.perf.h2d"}, contexts=contexts, gpu_names=h100
    )
    # Gen4 x8 is a quarter of Gen5 x16: the table's 31 GB/s floor becomes 7.8.
    assert copy.measurements["link_scale"] == pytest.approx(0.25, abs=0.001)
    assert copy.measurements["floor"] == pytest.approx(31 * 0.25, abs=0.05)
    assert copy.reason.endswith("for Gen4 x8 (card max Gen5 x16, host max Gen4 x8)")
    (full,) = run_stand_in(
        gpu_indices=[0],
        only={"workload.perf.h2d"},
        contexts={0: context(0, 0, card=Link(5, 16), host=Link(5, 16))},
        gpu_names=h100,
    )
    assert full.measurements["floor"] == 31
