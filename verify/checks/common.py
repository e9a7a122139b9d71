"""Helpers shared by the host checks: reading query outcomes and naming NVML failures."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from verify.registry import Judgement, fail, skip

NO_EXPECTATION = "no expected value given"
# What a recording does not hold (a recorded nvidia-smi dump has no /proc/modules, no kernel log,
# no framework build): its checks are skipped with that reason, never passed nor failed.
NOT_RECORDED = "NotRecorded"

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


def describe(outcome: dict[str, Any]) -> str:
    """'<meaning> (<error class>)' for a recorded query that raised."""
    error = outcome.get("error", "unknown error")
    if error == NOT_RECORDED:
        return str(outcome.get("message") or "not recorded")
    meaning = NVML_ERROR_TEXT.get(error) or outcome.get("message") or error
    return f"{meaning} ({error})"


def not_recorded(outcome: dict[str, Any] | None) -> bool:
    return (outcome or {}).get("error") == NOT_RECORDED


def unsupported(outcome: dict[str, Any]) -> bool:
    return outcome.get("error") in (
        "NVMLError_NotSupported",
        "NVMLError_FunctionNotFound",
        NOT_RECORDED,
    )


def source_kind(snapshot: dict[str, Any]) -> str | None:
    """Where the facts came from when not this machine: e.g. 'nvidia-smi -q -x'."""
    return (snapshot.get("source") or {}).get("kind")


def failed_outcome(outcome: dict[str, Any] | None) -> bool:
    return outcome is None or "error" in outcome


def nvml_unavailable(snapshot: dict[str, Any]) -> str | None:
    """Why NVML gave nothing, or None when it initialised and counted the GPUs."""
    nvml = snapshot.get("nvml") or {}
    init = nvml.get("nvmlInit")
    if not init or ("error" not in init and "value" not in init):
        return "NVML: nvmlInit not in the snapshot"
    if "error" in init:
        return f"NVML: {describe(init)}"
    count = nvml.get("nvmlDeviceGetCount")
    if not count:
        return "NVML: cannot count GPUs: nvmlDeviceGetCount not in the snapshot"
    if "error" in count:
        return f"NVML: cannot count GPUs: {describe(count)}"
    if not isinstance(count.get("value"), int):
        return f"NVML: cannot count GPUs: NVML answered {count.get('value')!r}"
    return None


def gpus(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    return list(snapshot["nvml"].get("gpus") or [])


def no_gpu_reason(snapshot: dict[str, Any]) -> str | None:
    """Why there is no GPU to check or to run a workload on, or None when NVML lists some."""
    return nvml_unavailable(snapshot) or (None if gpus(snapshot) else "NVML sees no GPU")


class Unanswered(Exception):
    """A GPU query that raised: carries the judgement its check gives that GPU."""

    def __init__(self, judgement: Judgement) -> None:
        super().__init__(judgement.reason)
        self.judgement = judgement


def answer(device: dict[str, Any], key: str, what: str) -> Any:
    """A GPU query's value; raises Unanswered when it raised (unsupported -> skipped)."""
    outcome = device.get(key)
    if outcome is None:
        raise Unanswered(fail(f"{what}: not in the snapshot"))
    if "error" in outcome:
        judge = skip if unsupported(outcome) else fail
        raise Unanswered(judge(f"{what}: {describe(outcome)}"))
    return outcome["value"]


def per_gpu(
    snapshot: dict[str, Any], judge: Callable[[dict[str, Any]], Judgement]
) -> list[Judgement]:
    """Run `judge` on every GPU; without NVML or without GPUs, one failure saying why."""
    why = no_gpu_reason(snapshot)
    if why:
        return [fail(why)]
    judged = []
    for device in gpus(snapshot):
        handle = device.get("nvmlDeviceGetHandleByIndex")
        try:
            judgement = fail(f"NVML: {describe(handle)}") if handle is not None else judge(device)
        except Unanswered as unanswered:
            judgement = unanswered.judgement
        judged.append(replace(judgement, gpu=device["index"]))
    return judged


def each_gpu(judge: Callable[[dict[str, Any]], Judgement]) -> Callable[..., list[Judgement]]:
    """A check that judges every GPU on its own answers alone."""

    @functools.wraps(judge)
    def check(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
        return per_gpu(snapshot, judge)

    return check
