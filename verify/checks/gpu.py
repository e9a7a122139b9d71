"""Per-GPU health checks over NVML's answers. Unsupported queries are skipped, never passed."""

from __future__ import annotations

from typing import Any

from verify.checks.common import (
    NO_EXPECTATION,
    CheckSpec,
    Judgement,
    gpus,
    nvml_unavailable,
    per_gpu,
    query,
    result,
)
from verify.expectations import setting
from verify.result import CheckResult, Severity, Status

REQUIRED = Severity.REQUIRED
ADVISORY = Severity.ADVISORY
OK = Status.PASSED
FAIL = Status.FAILED
SKIP = Status.SKIPPED

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


def gpu_count(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "gpu.count"
    expected = expectations.get("gpu_count")
    if expected is None:
        return [result(check_id, SKIP, NO_EXPECTATION, REQUIRED)]
    why = nvml_unavailable(snapshot)
    if why:
        return [result(check_id, FAIL, why, REQUIRED, expected=expected)]
    found = len(gpus(snapshot))
    status = OK if found == expected else FAIL
    reason = f"{found} GPU(s)" + ("" if status is OK else f", expected {expected}")
    return [result(check_id, status, reason, REQUIRED, expected=expected, found=found)]


def gpu_model(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "gpu.model"
    allowed = expectations.get("gpu_models")
    if not allowed:
        return [result(check_id, SKIP, NO_EXPECTATION, REQUIRED)]

    def judge(device: dict[str, Any]) -> Judgement:
        name, problem = query(device, "nvmlDeviceGetName", "name")
        if problem:
            return problem
        if name in allowed:
            return OK, name, {"name": name}
        return FAIL, f"{name}, expected one of: {', '.join(allowed)}", {"name": name}

    return per_gpu(snapshot, check_id, REQUIRED, judge)


def sm_supported(sm: int, archs: list[int]) -> bool:
    """SASS for sm_XY runs on sm_XZ with Z >= Y (same major); without PTX nothing else runs."""
    return any(arch // 10 == sm // 10 and arch % 10 <= sm % 10 for arch in archs)


def compute_capability(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "gpu.compute_capability"
    probe = snapshot.get("framework") or {}
    framework = probe.get("name", "mxnet")
    # MXNet cannot list its kernels, so the role states them; torch reports its own SASS archs.
    archs = expectations.get("mxnet_cuda_archs") if framework == "mxnet" else None
    source = "the MXNet build" if archs else f"the {framework} build"
    archs = archs or probe.get("cuda_archs")
    if not archs:
        reason = (
            f"{NO_EXPECTATION} (mxnet_cuda_archs)"
            if framework == "mxnet"
            else (f"{framework} did not report its CUDA archs")
        )
        return [result(check_id, SKIP, reason, REQUIRED)]

    def judge(device: dict[str, Any]) -> Judgement:
        capability, problem = query(device, "nvmlDeviceGetCudaComputeCapability", "capability")
        if problem:
            return problem
        major, minor = capability
        sm = major * 10 + minor
        measured = {"compute_capability": f"{major}.{minor}"}
        built = ", ".join(f"sm_{arch}" for arch in sorted(archs))
        if sm_supported(sm, archs):
            return OK, f"sm_{sm} runs the build's kernels ({built})", measured
        return FAIL, f"sm_{sm} has no kernels in {source} ({built}; no PTX)", measured

    return per_gpu(snapshot, check_id, REQUIRED, judge)


def ecc(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    def judge(device: dict[str, Any]) -> Judgement:
        mode, problem = query(device, "nvmlDeviceGetEccMode", "ECC")
        if problem:
            return problem
        if not mode[0]:
            return SKIP, "ECC is disabled on this GPU: no error counters", {}
        errors, problem = query(
            device, "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE", "ECC counter"
        )
        if problem:
            return problem
        measured = {"volatile_uncorrected": errors}
        if errors:
            return FAIL, f"{errors} volatile uncorrected ECC error(s) since boot", measured
        return OK, "no volatile uncorrected ECC errors", measured

    return per_gpu(snapshot, "gpu.ecc", REQUIRED, judge)


def retired_pages(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    def judge(device: dict[str, Any]) -> Judgement:
        pending, problem = query(
            device, "nvmlDeviceGetRetiredPagesPendingStatus", "page retirement"
        )
        if problem:
            return problem
        if pending:
            return FAIL, "retired pages pending: reset the GPU or reboot", {"pending": True}
        return OK, "no retired pages pending", {"pending": False}

    return per_gpu(snapshot, "gpu.retired_pages", REQUIRED, judge)


def row_remap(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    def judge(device: dict[str, Any]) -> Judgement:
        rows, problem = query(device, "nvmlDeviceGetRemappedRows", "row remapping")
        if problem:
            return problem
        correctable, uncorrectable, pending, failure = rows
        measured = {
            "remapped_correctable": correctable,
            "remapped_uncorrectable": uncorrectable,
            "pending": bool(pending),
            "failure": bool(failure),
        }
        if failure:
            return FAIL, "row remapping failed: the GPU needs replacing (RMA)", measured
        if pending:
            return FAIL, "row remap pending: reset the GPU or reboot", measured
        return OK, f"no remap pending ({correctable + uncorrectable} rows remapped)", measured

    return per_gpu(snapshot, "gpu.row_remap", REQUIRED, judge)


def pcie_width(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    def judge(device: dict[str, Any]) -> Judgement:
        current, problem = query(device, "nvmlDeviceGetCurrPcieLinkWidth", "PCIe width")
        if problem:
            return problem
        maximum, problem = query(device, "nvmlDeviceGetMaxPcieLinkWidth", "PCIe max width")
        if problem:
            return problem
        # Only the width is judged: links drop their generation at idle by design.
        generation = (device.get("nvmlDeviceGetCurrPcieLinkGeneration") or {}).get("value")
        max_generation = (device.get("nvmlDeviceGetMaxPcieLinkGeneration") or {}).get("value")
        measured = {
            "width": current,
            "max_width": maximum,
            "generation": generation,
            "max_generation": max_generation,
        }
        if current < maximum:
            return FAIL, f"PCIe link x{current} of x{maximum}: reseat or move the card", measured
        return OK, f"PCIe link x{current} of x{maximum}", measured

    return per_gpu(snapshot, "gpu.pcie_width", REQUIRED, judge)


def persistence(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    def judge(device: dict[str, Any]) -> Judgement:
        mode, problem = query(device, "nvmlDeviceGetPersistenceMode", "persistence mode")
        if problem:
            return problem
        if mode:
            return OK, "persistence mode on", {"persistence_mode": True}
        return (
            FAIL,
            "persistence mode off: each job pays driver start-up (enable nvidia-persistenced)",
            {"persistence_mode": False},
        )

    # Advisory: without it every CUDA start is slower, but results are still correct.
    return per_gpu(snapshot, "gpu.persistence", ADVISORY, judge)


def temperature(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    margin = setting(expectations, "temperature_margin_c")

    def judge(device: dict[str, Any]) -> Judgement:
        current, problem = query(device, "nvmlDeviceGetTemperature:GPU", "temperature")
        if problem:
            return problem
        slowdown, problem = query(
            device, "nvmlDeviceGetTemperatureThreshold:SLOWDOWN", "slowdown threshold"
        )
        if problem:
            return problem
        measured = {"temperature_c": current, "slowdown_c": slowdown, "margin_c": margin}
        if current > slowdown - margin:
            return (
                FAIL,
                f"{current} °C, within {margin} °C of the {slowdown} °C slowdown threshold",
                measured,
            )
        return OK, f"{current} °C, slowdown at {slowdown} °C", measured

    return per_gpu(snapshot, "gpu.temperature", REQUIRED, judge)


def clock_event_names(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_BITS.items() if mask & bit]


def throttle(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    def judge(device: dict[str, Any]) -> Judgement:
        key = "nvmlDeviceGetCurrentClocksEventReasons"
        if "nvmlDeviceGetCurrentClocksThrottleReasons" in device:
            key = "nvmlDeviceGetCurrentClocksThrottleReasons"
        mask, problem = query(device, key, "clock event reasons")
        if problem:
            return problem
        active = clock_event_names(mask)
        harmful = clock_event_names(mask & HARMFUL_CLOCK_EVENTS)
        measured = {"reasons": active, "mask": mask}
        if harmful:
            return FAIL, f"clocks held down by {', '.join(harmful)}", measured
        return OK, "no hardware/thermal/power-brake slowdown", measured

    return per_gpu(snapshot, "gpu.throttle", REQUIRED, judge)


def processes(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    own_pid = snapshot.get("pid")

    def judge(device: dict[str, Any]) -> Judgement:
        running, problem = query(device, "nvmlDeviceGetComputeRunningProcesses", "processes")
        if problem:
            return problem
        stray = [proc for proc in running if proc.get("pid") != own_pid]
        pids = [proc.get("pid") for proc in stray]
        if stray:
            used = sum(proc.get("usedGpuMemory") or 0 for proc in stray) // 2**20
            return (
                FAIL,
                f"{len(stray)} stray compute process(es) (pid {', '.join(map(str, pids))}, "
                f"{used} MiB): results and timings would be skewed",
                {"pids": pids, "used_mib": used},
            )
        return OK, "no other compute processes", {"pids": []}

    return per_gpu(snapshot, "gpu.processes", REQUIRED, judge)


CHECKS = [
    CheckSpec("gpu.count", REQUIRED, True, "GPU count == gpu_count", gpu_count),
    CheckSpec("gpu.model", REQUIRED, True, "each GPU's name in gpu_models", gpu_model),
    CheckSpec(
        "gpu.compute_capability",
        REQUIRED,
        True,
        "SM arch has kernels in mxnet_cuda_archs",
        compute_capability,
    ),
    CheckSpec("gpu.ecc", REQUIRED, True, "volatile uncorrected ECC errors == 0", ecc),
    CheckSpec("gpu.retired_pages", REQUIRED, True, "no retired pages pending", retired_pages),
    CheckSpec("gpu.row_remap", REQUIRED, True, "no row-remap failure or pending", row_remap),
    CheckSpec("gpu.pcie_width", REQUIRED, True, "PCIe link width == max width", pcie_width),
    CheckSpec("gpu.persistence", ADVISORY, True, "persistence mode on", persistence),
    CheckSpec(
        "gpu.temperature",
        REQUIRED,
        True,
        "temperature < slowdown - temperature_margin_c",
        temperature,
    ),
    CheckSpec("gpu.throttle", REQUIRED, True, "no HW/thermal/power-brake slowdown", throttle),
    CheckSpec("gpu.processes", REQUIRED, True, "no stray compute processes", processes),
]
