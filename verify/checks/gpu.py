"""Per-GPU health checks over NVML's answers. Unsupported queries are skipped, never passed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from verify.checks.common import (
    NO_EXPECTATION,
    answer,
    each_gpu,
    gpus,
    nvml_unavailable,
    per_gpu,
    source_kind,
)
from verify.expectations import setting
from verify.pcie import Link, card_of, describe, host_of, shortfalls
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
    lifetime = value(device.get("nvmlDeviceGetTotalEccErrors:UNCORRECTED:AGGREGATE"))
    measured = {"volatile_uncorrected": errors, "aggregate_uncorrected": lifetime}
    # The lifetime count is history (its pages are retired or rows remapped, judged by those
    # checks); only errors since boot mean this boot's results may be wrong.
    history = f"; {lifetime} uncorrected over the GPU's life" if lifetime else ""
    if errors:
        return fail(f"{errors} volatile uncorrected ECC error(s) since boot{history}", **measured)
    return ok(f"no volatile uncorrected ECC errors{history}", **measured)


# NVIDIA's limits for retired pages (DCGM's health watch, dcgm_hardware_limits.h: "updated to
# match the field diag"): the RMA criterion is this many pages retired in all, or more than the
# soft limit of double-bit pages still growing by more than one a week.
RETIRED_PAGES_RMA = 63
RETIRED_DBE_SOFT_LIMIT = 15
WEEK_S = 7 * 24 * 3600


def _pages(device: dict[str, Any], cause: str) -> list[dict[str, Any]] | None:
    return value(device.get(f"nvmlDeviceGetRetiredPages_v2:{cause}"))


def retired_pages_verdict(
    sbe: list[dict[str, Any]], dbe: list[dict[str, Any]], now_s: float | None
) -> str | None:
    """Why these retired pages are past NVIDIA's RMA limits, or None."""
    total = len(sbe) + len(dbe)
    if total >= RETIRED_PAGES_RMA:
        return f"{total} pages retired, at NVIDIA's RMA limit of {RETIRED_PAGES_RMA}"
    if len(dbe) > RETIRED_DBE_SOFT_LIMIT and now_s is not None:
        recent = [p for p in dbe if p.get("timestamp") and now_s - p["timestamp"] <= WEEK_S]
        if len(recent) > 1:
            return (
                f"{len(dbe)} double-bit pages retired (over {RETIRED_DBE_SOFT_LIMIT}) and "
                f"{len(recent)} more in the last week"
            )
    return None


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).timestamp()


@check("gpu.retired_pages", description="no page retirement pending, retired pages < RMA limits")
def retired_pages(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    now_s = _epoch(snapshot.get("recorded"))

    def judge(device: dict[str, Any]) -> Judgement:
        pending = answer(device, "nvmlDeviceGetRetiredPagesPendingStatus", "page retirement")
        sbe = _pages(device, "MULTIPLE_SINGLE_BIT_ECC_ERRORS")
        dbe = _pages(device, "DOUBLE_BIT_ECC_ERROR")
        measured: dict[str, Any] = {"pending": bool(pending)}
        counted = sbe is not None and dbe is not None
        if counted:
            measured.update(retired_sbe=len(sbe), retired_dbe=len(dbe))
        retired = f"{len(sbe)} SBE + {len(dbe)} DBE page(s) retired" if counted else ""
        if pending:
            where = f" ({retired})" if retired else ""
            return fail(f"page retirement pending{where}: reset the GPU or reboot", **measured)
        if counted:
            past = retired_pages_verdict(sbe, dbe, now_s)
            if past:
                return fail(f"{past}: the GPU qualifies for RMA", **measured)
            return ok(f"none pending; {retired}, below the RMA limits", **measured)
        return ok("no retired pages pending (retired counts not recorded)", **measured)

    return per_gpu(snapshot, judge)


# NVIDIA's row-remapping RMA policy: the failure flag is the criterion; it is set at the latest
# after this many remaps for uncorrectable errors.
ROW_REMAP_UNCORRECTABLE_LIMIT = 512


@check("gpu.row_remap", description="no row-remap failure or pending")
@each_gpu
def row_remap(device: dict[str, Any]) -> Judgement:
    correctable, uncorrectable, pending, failure = answer(
        device, "nvmlDeviceGetRemappedRows", "row remapping"
    )
    histogram = value(device.get("nvmlDeviceGetRowRemapperHistogram")) or {}
    measured = {
        "remapped_correctable": correctable,
        "remapped_uncorrectable": uncorrectable,
        "pending": bool(pending),
        "failure": bool(failure),
        "banks_without_spare_rows": histogram.get("none"),
    }
    if failure:
        return fail("row remapping failed: the GPU needs replacing (RMA)", **measured)
    if uncorrectable >= ROW_REMAP_UNCORRECTABLE_LIMIT:
        return fail(
            f"{uncorrectable} rows remapped for uncorrectable errors, at NVIDIA's RMA limit of "
            f"{ROW_REMAP_UNCORRECTABLE_LIMIT}",
            **measured,
        )
    if pending:
        return fail("row remap pending: reset the GPU or reboot", **measured)
    spent = histogram.get("none")
    note = f"; {spent} bank(s) have no spare row left" if spent else ""
    return ok(f"no remap pending ({correctable + uncorrectable} rows remapped){note}", **measured)


# A GPU is under load when it is busy and not idling: NVIDIA GPUs hold the PCIe link at its top
# generation in P0/P2, so only then does a lower generation mean a fault.
LOADED_UTILIZATION_PCT = 10


def under_load(device: dict[str, Any]) -> tuple[bool, str]:
    """(loaded, 'at 97 % utilisation' / 'at idle' / 'load unknown') from one snapshot."""
    utilization = (value(device.get("nvmlDeviceGetUtilizationRates")) or {}).get("gpu")
    reasons = value(device.get("nvmlDeviceGetCurrentClocksEventReasons"))
    idle = isinstance(reasons, int) and bool(reasons & 0x1)
    if not isinstance(utilization, int | float):
        return False, "load unknown"
    if utilization >= LOADED_UTILIZATION_PCT and not idle:
        return True, f"at {utilization:g} % utilisation"
    return False, "at idle"


@check("gpu.pcie_width", description="PCIe link under load == what card and host support")
@each_gpu
def pcie_width(device: dict[str, Any]) -> Judgement:
    width = answer(device, "nvmlDeviceGetCurrPcieLinkWidth", "PCIe width")
    max_width = answer(device, "nvmlDeviceGetMaxPcieLinkWidth", "PCIe max width")
    current = Link(value(device.get("nvmlDeviceGetCurrPcieLinkGeneration")), width)
    card, host = card_of(device), host_of(device)
    loaded, load = under_load(device)
    measured = {
        "width": width,
        "max_width": max_width,
        "generation": current.gen,
        "max_generation": card.gen,
        "host_max_generation": host.gen,
        "host_max_width": host.width,
        "under_load": loaded,
        "link": describe(current, card, host),
    }
    text = f"{describe(current, card, host)} {load}"
    if loaded:
        problems = shortfalls(current, card, host)
        if problems:
            return fail(f"{text}: {'; '.join(problems)}: reseat or move the card", **measured)
    notes = []
    if not loaded:
        notes.append("idle links drop their generation by design; judged under load")
    if width < max_width and not host.width:
        notes.append(f"the slot's width is not known: x{width} is taken for an x{width} slot")
    return ok("; ".join([text, *notes]), **measured)


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


@check("gpu.throttle", description="no HW/thermal/power-brake slowdown under load")
@each_gpu
def throttle(device: dict[str, Any]) -> Judgement:
    key = "nvmlDeviceGetCurrentClocksEventReasons"
    if "nvmlDeviceGetCurrentClocksThrottleReasons" in device:
        key = "nvmlDeviceGetCurrentClocksThrottleReasons"
    mask = answer(device, key, "clock event reasons")
    active = clock_event_names(mask)
    harmful = clock_event_names(mask & HARMFUL_CLOCK_EVENTS)
    loaded, load = under_load(device)
    counters = value(device.get("clocks_event_reasons_counters"))
    measured = {"reasons": active, "mask": mask, "under_load": loaded}
    if counters:
        measured["counters_us"] = counters
    if harmful and loaded:
        return fail(f"clocks held down by {', '.join(harmful)} {load}", **measured)
    if harmful:
        # One sample while idle may be a transient (a power-brake pulse at boot); the under-load
        # samples of the workloads (workload.perf.throttle) judge it.
        return ok(
            f"{', '.join(harmful)} seen once {load}: reported, not failed; judged under load",
            **measured,
        )
    listed = f" ({', '.join(active)})" if active else ""
    return ok(f"no hardware/thermal/power-brake slowdown{listed}", **measured)


@check("gpu.processes", description="no stray compute processes")
def processes(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    own_pid = snapshot.get("pid")
    recorded_by = source_kind(snapshot)

    def judge(device: dict[str, Any]) -> Judgement:
        running = answer(device, "nvmlDeviceGetComputeRunningProcesses", "processes")
        if not isinstance(running, list):
            return fail(f"processes: NVML gave {running!r}, not a list")
        stray = [proc for proc in running if proc.get("pid") != own_pid]
        pids = [proc.get("pid") for proc in stray]
        used = sum(proc.get("usedGpuMemory") or 0 for proc in stray) // 2**20
        if recorded_by:
            # They would skew a run of this suite, and none runs on a recording.
            return skip(
                f"{recorded_by}: {len(stray)} compute process(es) were running when it was "
                "recorded; judged only before a live run",
                pids=pids,
                used_mib=used,
            )
        if not stray:
            return ok("no other compute processes", pids=[])
        return fail(
            f"{len(stray)} stray compute process(es) (pid {', '.join(map(str, pids))}, "
            f"{used} MiB): results and timings would be skewed",
            pids=pids,
            used_mib=used,
        )

    return per_gpu(snapshot, judge)


# Reported, not failed: MIG is a configuration. It matters to the workloads (CUDA sees MIG
# devices only by their MIG UUIDs), which say so themselves.
@check("gpu.mig", description="MIG mode reported", severity=Severity.ADVISORY)
@each_gpu
def mig(device: dict[str, Any]) -> Judgement:
    current, pending = answer(device, "nvmlDeviceGetMigMode", "MIG mode")
    instances = value(device.get("mig_devices"))
    measured = {"mig_mode": bool(current), "pending": bool(pending), "mig_devices": instances}
    change = ""
    if bool(pending) != bool(current):
        change = f"; {'enabled' if pending else 'disabled'} after the next GPU reset"
    if current:
        count = f" with {instances} MIG device(s)" if instances is not None else ""
        return ok(f"MIG enabled{count}: reported, not a fault{change}", **measured)
    return ok(f"MIG disabled{change}", **measured)
