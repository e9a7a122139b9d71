"""Helpers shared by the host checks: reading query outcomes and naming NVML failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verify.result import CheckResult, Severity, Status

Check = Callable[[dict[str, Any], dict[str, Any]], list[CheckResult]]

NO_EXPECTATION = "no expected value given"

# What each NVML error means to the person reading the report.
NVML_ERROR_TEXT = {
    "NVMLError_LibraryNotFound": "library libnvidia-ml.so.1 not found (no NVIDIA driver installed)",
    "NVMLError_DriverNotLoaded": "driver not loaded",
    "NVMLError_LibRmVersionMismatch": "Driver/library version mismatch",
    "NVMLError_NoPermission": "insufficient permissions",
    "NVMLError_NotSupported": "not supported on this GPU",
    "NVMLError_GpuIsLost": "GPU is lost (fell off the bus)",
    "NVMLError_FunctionNotFound": "function not in this driver's NVML",
    "NVMLError_ResetRequired": "GPU requires a reset",
    "NVMLError_CorruptedInforom": "corrupted infoROM",
    "NVMLError_InsufficientPower": "insufficient external power",
    "ModuleNotFoundError": "nvidia-ml-py (pynvml) is not installed",
}


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    severity: Severity
    # Needs the NVIDIA driver: skipped under --cpu-only.
    needs_gpu: bool
    description: str
    function: Check


def describe(outcome: dict[str, Any]) -> str:
    """'<meaning> (<error class>)' for a recorded query that raised."""
    error = outcome.get("error", "unknown error")
    meaning = NVML_ERROR_TEXT.get(error) or outcome.get("message") or error
    return f"{meaning} ({error})"


def unsupported(outcome: dict[str, Any]) -> bool:
    return outcome.get("error") in ("NVMLError_NotSupported", "NVMLError_FunctionNotFound")


def value(outcome: dict[str, Any] | None) -> Any:
    return (outcome or {}).get("value")


def failed_outcome(outcome: dict[str, Any] | None) -> bool:
    return outcome is None or "error" in outcome


def nvml_unavailable(snapshot: dict[str, Any]) -> str | None:
    """Why NVML gave nothing, or None when it initialised."""
    init = snapshot["nvml"].get("nvmlInit", {})
    if "error" in init:
        return f"NVML: {describe(init)}"
    count = snapshot["nvml"].get("nvmlDeviceGetCount", {})
    if "error" in count:
        return f"NVML: cannot count GPUs: {describe(count)}"
    return None


def gpus(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    return list(snapshot["nvml"].get("gpus") or [])


def result(
    check_id: str,
    status: Status,
    reason: str,
    severity: Severity,
    gpu: int | None = None,
    **measurements: Any,
) -> CheckResult:
    return CheckResult(
        check_id, status, reason, severity=severity, gpu=gpu, measurements=measurements
    )


Judgement = tuple[Status, str, dict[str, Any]]


def per_gpu(
    snapshot: dict[str, Any],
    check_id: str,
    severity: Severity,
    judge: Callable[[dict[str, Any]], Judgement],
) -> list[CheckResult]:
    """Run `judge` on every GPU; without NVML or without GPUs, one failure saying why."""
    why = nvml_unavailable(snapshot)
    if why:
        return [result(check_id, Status.FAILED, why, severity)]
    devices = gpus(snapshot)
    if not devices:
        return [result(check_id, Status.FAILED, "NVML sees no GPU", severity)]
    results = []
    for device in devices:
        index = device["index"]
        handle = device.get("nvmlDeviceGetHandleByIndex")
        if handle is not None:
            status, reason, measured = Status.FAILED, f"NVML: {describe(handle)}", {}
        else:
            status, reason, measured = judge(device)
        results.append(result(check_id, status, reason, severity, index, **measured))
    return results


def query(device: dict[str, Any], key: str, what: str) -> tuple[Any, Judgement | None]:
    """A query's value, or the judgement to return when it raised (unsupported -> skipped)."""
    outcome = device.get(key)
    if outcome is None:
        return None, (Status.FAILED, f"{what}: not in the snapshot", {})
    if "error" in outcome:
        status = Status.SKIPPED if unsupported(outcome) else Status.FAILED
        return None, (status, f"{what}: {describe(outcome)}", {})
    return outcome["value"], None
