"""Per-GPU health checks over NVML's answers. Unsupported queries are skipped, never passed."""

from __future__ import annotations

from typing import Any

from verify.checks.common import NO_EXPECTATION, answer, each_gpu, gpus, nvml_unavailable, per_gpu
from verify.expectations import setting
from verify.registry import Judgement, check, fail, ok, skip
from verify.result import Severity
from verify.values import value

# nvmlClocksEventReason* bits that mean the hardware is protecting itself (heat, power delivery,
# an external slowdown signal). Idle, application clocks, sync boost and the software power cap
# are normal on a healthy card and only reported.
CLOCK_EVENT_BITS = {
    0x1: "GpuIdle",
    0x2: "ApplicationsClocksSetting",
    0x4: "SwPowerCap",
    0x8: "HwSlowdown",
    0x10: "SyncBoost",
    0x20: "SwThermalSlowdown",
    0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown",
    0x100: "DisplayClockSetting",
}
HARMFUL_CLOCK_EVENTS = 0x8 | 0x20 | 0x40 | 0x80


@check("gpu.count", description="GPU count == gpu_count")
def gpu_count(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    expected = expectations.get("gpu_count")
    if expected is None:
        return skip(NO_EXPECTATION)
    why = nvml_unavailable(snapshot)
    if why:
        return fail(why, expected=expected)
    found = len(gpus(snapshot))
    if found != expected:
        return fail(f"{found} GPU(s), expected {expected}", expected=expected, found=found)
    return ok(f"{found} GPU(s)", expected=expected, found=found)


@check("gpu.model", description="each GPU's name in gpu_models")
def gpu_model(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    allowed = expectations.get("gpu_models")
    if not allowed:
        return [skip(NO_EXPECTATION)]

    def judge(device: dict[str, Any]) -> Judgement:
        name = answer(device, "nvmlDeviceGetName", "name")
        if name in allowed:
            return ok(name, name=name)
        return fail(f"{name}, expected one of: {', '.join(allowed)}", name=name)

    return per_gpu(snapshot, judge)


def sm_supported(sm: int, archs: list[int]) -> bool:
    """SASS for sm_XY runs on sm_XZ with Z >= Y (same major); without PTX nothing else runs."""
    return any(arch // 10 == sm // 10 and arch % 10 <= sm % 10 for arch in archs)


@check("gpu.compute_capability", description="SM arch has kernels in mxnet_cuda_archs")
def compute_capability(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    probe = snapshot.get("framework") or {}
    framework = probe.get("name", "mxnet")
    # MXNet cannot list its kernels, so the role states them; torch reports its own SASS archs.
    archs = expectations.get("mxnet_cuda_archs") if framework == "mxnet" else None
    source = "the MXNet build" if archs else f"the {framework} build"
    archs = archs or probe.get("cuda_archs")
    if not archs:
        if framework == "mxnet":
            return [skip(f"{NO_EXPECTATION} (mxnet_cuda_archs)")]
        return [skip(f"{framework} did not report its CUDA archs")]
    built = ", ".join(f"sm_{arch}" for arch in sorted(archs))

    def judge(device: dict[str, Any]) -> Judgement:
        major, minor = answer(device, "nvmlDeviceGetCudaComputeCapability", "capability")
        sm = major * 10 + minor
        measured = {"compute_capability": f"{major}.{minor}"}
        if sm_supported(sm, archs):
            return ok(f"sm_{sm} runs the build's kernels ({built})", **measured)
        return fail(f"sm_{sm} has no kernels in {source} ({built}; no PTX)", **measured)

    return per_gpu(snapshot, judge)


@check("gpu.ecc", description="volatile uncorrected ECC errors == 0")
@each_gpu
def ecc(device: dict[str, Any]) -> Judgement:
    if not answer(device, "nvmlDeviceGetEccMode", "ECC")[0]:
        return skip("ECC is disabled on this GPU: no error counters")
    errors = answer(device, "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE", "ECC counter")
    if errors:
        return fail(
            f"{errors} volatile uncorrected ECC error(s) since boot", volatile_uncorrected=errors
        )
    return ok("no volatile uncorrected ECC errors", volatile_uncorrected=errors)


@check("gpu.retired_pages", description="no retired pages pending")
@each_gpu
def retired_pages(device: dict[str, Any]) -> Judgement:
    if answer(device, "nvmlDeviceGetRetiredPagesPendingStatus", "page retirement"):
        return fail("retired pages pending: reset the GPU or reboot", pending=True)
    return ok("no retired pages pending", pending=False)


@check("gpu.row_remap", description="no row-remap failure or pending")
@each_gpu
def row_remap(device: dict[str, Any]) -> Judgement:
    correctable, uncorrectable, pending, failure = answer(
        device, "nvmlDeviceGetRemappedRows", "row remapping"
    )
    measured = {
        "remapped_correctable": correctable,
        "remapped_uncorrectable": uncorrectable,
        "pending": bool(pending),
        "failure": bool(failure),
    }
    if failure:
        return fail("row remapping failed: the GPU needs replacing (RMA)", **measured)
    if pending:
        return fail("row remap pending: reset the GPU or reboot", **measured)
    return ok(f"no remap pending ({correctable + uncorrectable} rows remapped)", **measured)


@check("gpu.pcie_width", description="PCIe link width == max width")
@each_gpu
def pcie_width(device: dict[str, Any]) -> Judgement:
    current = answer(device, "nvmlDeviceGetCurrPcieLinkWidth", "PCIe width")
    maximum = answer(device, "nvmlDeviceGetMaxPcieLinkWidth", "PCIe max width")
    # Only the width is judged: links drop their generation at idle by design.
    measured = {
        "width": current,
        "max_width": maximum,
        "generation": value(device.get("nvmlDeviceGetCurrPcieLinkGeneration")),
        "max_generation": value(device.get("nvmlDeviceGetMaxPcieLinkGeneration")),
    }
    if current < maximum:
        return fail(f"PCIe link x{current} of x{maximum}: reseat or move the card", **measured)
    return ok(f"PCIe link x{current} of x{maximum}", **measured)


# Advisory: without it every CUDA start is slower, but results are still correct.
@check("gpu.persistence", description="persistence mode on", severity=Severity.ADVISORY)
@each_gpu
def persistence(device: dict[str, Any]) -> Judgement:
    if answer(device, "nvmlDeviceGetPersistenceMode", "persistence mode"):
        return ok("persistence mode on", persistence_mode=True)
    return fail(
        "persistence mode off: each job pays driver start-up (enable nvidia-persistenced)",
        persistence_mode=False,
    )


@check("gpu.temperature", description="temperature < slowdown - temperature_margin_c")
def temperature(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    margin = setting(expectations, "temperature_margin_c")

    def judge(device: dict[str, Any]) -> Judgement:
        current = answer(device, "nvmlDeviceGetTemperature:GPU", "temperature")
        slowdown = answer(
            device, "nvmlDeviceGetTemperatureThreshold:SLOWDOWN", "slowdown threshold"
        )
        measured = {"temperature_c": current, "slowdown_c": slowdown, "margin_c": margin}
        if current > slowdown - margin:
            return fail(
                f"{current} °C, within {margin} °C of the {slowdown} °C slowdown threshold",
                **measured,
            )
        return ok(f"{current} °C, slowdown at {slowdown} °C", **measured)

    return per_gpu(snapshot, judge)


def clock_event_names(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_BITS.items() if mask & bit]


@check("gpu.throttle", description="no HW/thermal/power-brake slowdown")
@each_gpu
def throttle(device: dict[str, Any]) -> Judgement:
    key = "nvmlDeviceGetCurrentClocksEventReasons"
    if "nvmlDeviceGetCurrentClocksThrottleReasons" in device:
        key = "nvmlDeviceGetCurrentClocksThrottleReasons"
    mask = answer(device, key, "clock event reasons")
    active = clock_event_names(mask)
    harmful = clock_event_names(mask & HARMFUL_CLOCK_EVENTS)
    if harmful:
        return fail(f"clocks held down by {', '.join(harmful)}", reasons=active, mask=mask)
    return ok("no hardware/thermal/power-brake slowdown", reasons=active, mask=mask)


@check("gpu.processes", description="no stray compute processes")
def processes(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    own_pid = snapshot.get("pid")

    def judge(device: dict[str, Any]) -> Judgement:
        running = answer(device, "nvmlDeviceGetComputeRunningProcesses", "processes")
        stray = [proc for proc in running if proc.get("pid") != own_pid]
        pids = [proc.get("pid") for proc in stray]
        if not stray:
            return ok("no other compute processes", pids=[])
        used = sum(proc.get("usedGpuMemory") or 0 for proc in stray) // 2**20
        return fail(
            f"{len(stray)} stray compute process(es) (pid {', '.join(map(str, pids))}, "
            f"{used} MiB): results and timings would be skewed",
            pids=pids,
            used_mib=used,
        )

    return per_gpu(snapshot, judge)
