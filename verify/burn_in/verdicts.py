"""Verdicts of a burn-in, pure over what the run recorded (`series.DeviceRecord`), so every way
a card can fail is a test over data: a corrupted GEMM, a memory mismatch, a sample series with
sustained thermal slowdown, a new Xid line, a link that drops to x4.

Each function returns `Judgement`s; `judge_device` stamps them with their check ids.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from verify.burn_in.series import DeviceRecord
from verify.checks.xid import APPLICATION_XIDS, meaning, parse_xid_lines
from verify.registry import Judgement, fail, ok, skip
from verify.result import CheckResult, Severity, Status

# NVML clock event reasons (nvmlClocksEventReason*).
REASON_SW_POWER_CAP = 0x4
REASON_HW_SLOWDOWN = 0x8
REASON_SW_THERMAL = 0x20
REASON_HW_THERMAL = 0x40
REASON_HW_POWER_BRAKE = 0x80
SLOWDOWN_MASK = REASON_HW_SLOWDOWN | REASON_SW_THERMAL | REASON_HW_THERMAL | REASON_HW_POWER_BRAKE

# A few seconds of slowdown while fans spin up is normal; a fifth of the run is not.
SLOWDOWN_SHARE_LIMIT = 0.2
# Under full load the SM clock of a healthy card stays well above this share of its maximum.
CLOCK_FLOOR = 0.6
# A sample counts as "under load" once the GPU is this busy (percent); without a utilisation
# reading every sample after the warm-up counts.
LOADED_UTIL = 50
WARMUP_S = 3.0

CHECK_IDS = (
    "burnin.run",
    "burnin.gemm",
    "burnin.memory",
    "burnin.copies",
    "burnin.xid",
    "burnin.ecc",
    "burnin.thermal",
    "burnin.clocks",
    "burnin.pcie",
    "burnin.dcgm",
)
ADVISORY = {"burnin.clocks"}


def loaded_samples(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples taken while the GPU was under load."""
    out = []
    for sample in samples:
        if sample.get("t", 0.0) < WARMUP_S:
            continue
        util = sample.get("util")
        if util is None or util >= LOADED_UTIL:
            out.append(sample)
    return out


def _who(record: DeviceRecord) -> str:
    if record.gpu is None:
        return record.label
    return f"GPU {record.gpu} ({record.uuid or 'UUID unknown'})"


def judge_gemm(record: DeviceRecord) -> Judgement:
    gemm = record.gemm
    if gemm.get("error"):
        return Judgement(Status.ERROR, f"{_who(record)}: GEMM load failed: {gemm['error']}")
    if not gemm.get("iterations"):
        return fail(f"{_who(record)}: no GEMM iteration completed")
    measured = {
        "iterations": gemm["iterations"],
        "comparisons": gemm.get("comparisons", 0),
        "dtypes": gemm.get("dtypes", []),
        "dtypes_not_run": gemm.get("dtypes_not_run", {}),
        "size": gemm.get("size"),
        "tflops_median": _median(record.gemm_series.get("tflops") or []),
    }
    mismatches = gemm.get("mismatches") or []
    if mismatches:
        first = mismatches[0]
        return fail(
            f"silent data corruption on {_who(record)}: {first['dtype']} result at iteration "
            f"{first['iteration']} differs from iteration 1's (same inputs) in "
            f"{first['elements']} of {first['of']} elements"
            + (f"; {len(mismatches)} corrupted comparisons in all" if len(mismatches) > 1 else ""),
            mismatches=mismatches[:20],
            **measured,
        )
    if not gemm.get("comparisons"):
        return fail(f"{_who(record)}: the run ended before any result was compared", **measured)
    not_run = "".join(f"; {d} not run: {why}" for d, why in measured["dtypes_not_run"].items())
    return ok(
        f"{gemm['iterations']} iterations ({', '.join(measured['dtypes'])}), "
        f"{gemm['comparisons']} bit-for-bit comparisons, all identical{not_run}",
        **measured,
    )


def judge_memory(record: DeviceRecord) -> Judgement:
    memory = record.memory
    if memory.get("error"):
        return Judgement(Status.ERROR, f"{_who(record)}: memory test failed: {memory['error']}")
    passes = memory.get("passes") or []
    if not passes:
        return fail(f"{_who(record)}: no memory test pass completed")
    measured = {
        "passes": len(passes),
        "patterns": sorted({p["pattern"] for p in passes}),
        "bytes_tested": max(p["bytes"] for p in passes),
    }
    bad = [p for p in passes if p.get("mismatches")]
    if bad:
        first = bad[0]["mismatches"][0]
        return fail(
            f"memory mismatch on {_who(record)}: pattern {bad[0]['pattern']} (pass "
            f"{bad[0]['pass']}), {first['words']} words differ in bytes "
            f"{first['start']:#x}-{first['end']:#x} of the tested region",
            errors=[m for p in bad for m in p["mismatches"]][:20],
            **measured,
        )
    gib = measured["bytes_tested"] / 2**30
    return ok(
        f"{len(passes)} passes over {gib:.2f} GiB ({', '.join(measured['patterns'])}), "
        "every word read back as written",
        **measured,
    )


def judge_copies(record: DeviceRecord) -> Judgement:
    copies = record.copies
    if copies.get("error"):
        return Judgement(Status.ERROR, f"{_who(record)}: copies failed: {copies['error']}")
    if not copies.get("rounds"):
        return skip(f"{_who(record)}: no host-device copy round completed")
    measured = {
        "rounds": copies["rounds"],
        "h2d_gb_per_s": _median(copies.get("h2d_gb_per_s") or []),
        "d2h_gb_per_s": _median(copies.get("d2h_gb_per_s") or []),
        "pinned": copies.get("pinned", False),
    }
    if copies.get("corrupted"):
        return fail(
            f"{_who(record)}: {copies['corrupted']} of {copies['rounds']} host-device round "
            "trips came back different",
            **measured,
        )
    return ok(
        f"{copies['rounds']} round trips intact; H2D {measured['h2d_gb_per_s']} GB/s, "
        f"D2H {measured['d2h_gb_per_s']} GB/s",
        **measured,
    )


def judge_xid(record: DeviceRecord) -> Judgement:
    if record.gpu is None:
        return skip("CPU run: no GPU to log Xid events")
    if record.xid_lines is None:
        return skip("kernel log not readable on this host: new Xid events unknown")
    events = parse_xid_lines(record.xid_lines)
    if not events:
        return ok("no new Xid event during the run", xids=[])
    xids = sorted({e["xid"] for e in events})
    described = "; ".join(f"Xid {x}: {meaning(x)}" for x in xids)
    if any(x not in APPLICATION_XIDS for x in xids):
        return fail(f"new Xid during the run on {_who(record)}: {described}", xids=xids)
    return ok(f"application faults only: {described}", xids=xids)


def _counter_rise(samples: list[dict[str, Any]], key: str) -> int | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return (values[-1] - values[0]) if len(values) >= 2 else (0 if values else None)


def judge_ecc(record: DeviceRecord) -> Judgement:
    if record.gpu is None:
        return skip("CPU run: no GPU memory counters")
    rise = _counter_rise(record.samples, "ecc_uncorrected")
    remap_failed = any(s.get("remap_failure") for s in record.samples)
    pending = _counter_rise(record.samples, "remap_pending")
    if rise is None and not remap_failed:
        return skip("ECC counters not readable (ECC off, or a consumer card)")
    measured = {"ecc_uncorrected_new": rise, "remap_pending_new": pending}
    if rise:
        return fail(
            f"{_who(record)}: {rise} new uncorrectable ECC errors during the run", **measured
        )
    if remap_failed:
        return fail(f"{_who(record)}: row remapping failed during the run (RMA)", **measured)
    if pending:
        return fail(
            f"{_who(record)}: {pending} new rows pending remapping: reset the GPU", **measured
        )
    return ok("no new uncorrectable ECC error, no row remapping", **measured)


def judge_thermal(record: DeviceRecord, limit: float = SLOWDOWN_SHARE_LIMIT) -> Judgement:
    if record.gpu is None:
        return skip("CPU run: no GPU temperature")
    loaded = loaded_samples(record.samples)
    if not loaded:
        return skip(f"{_who(record)}: no NVML sample under load")
    temps = [s["temperature_c"] for s in loaded if s.get("temperature_c") is not None]
    slowdown = [s for s in loaded if (s.get("reasons") or 0) & SLOWDOWN_MASK]
    share = len(slowdown) / len(loaded)
    threshold = record.card.get("slowdown_temp_c")
    measured = {
        "samples": len(loaded),
        "slowdown_share": round(share, 3),
        "temperature_max_c": max(temps) if temps else None,
        "slowdown_temp_c": threshold,
    }
    if threshold and temps and max(temps) >= threshold:
        hot = next(s for s in loaded if (s.get("temperature_c") or 0) >= threshold)
        return fail(
            f"{_who(record)} reached {max(temps)} °C, its slowdown threshold ({threshold} °C), "
            f"{hot['t']:.0f} s into the run",
            **measured,
        )
    if share > limit:
        kinds = _reason_names(slowdown)
        return fail(
            f"{_who(record)}: {kinds} in {share:.0%} of {len(loaded)} samples under load "
            f"(limit {limit:.0%}): cooling or power delivery",
            **measured,
        )
    return ok(
        f"{len(loaded)} samples under load, max {measured['temperature_max_c']} °C, "
        f"slowdown in {share:.0%}",
        **measured,
    )


def _reason_names(samples: list[dict[str, Any]]) -> str:
    names = {
        REASON_HW_SLOWDOWN: "HW slowdown",
        REASON_SW_THERMAL: "SW thermal slowdown",
        REASON_HW_THERMAL: "HW thermal slowdown",
        REASON_HW_POWER_BRAKE: "HW power brake",
    }
    seen = 0
    for sample in samples:
        seen |= sample.get("reasons") or 0
    return ", ".join(name for bit, name in names.items() if seen & bit)


def judge_clocks(record: DeviceRecord, floor: float = CLOCK_FLOOR) -> Judgement:
    if record.gpu is None:
        return skip("CPU run: no GPU clocks")
    loaded = loaded_samples(record.samples)
    clocks = [s["sm_clock_mhz"] for s in loaded if s.get("sm_clock_mhz")]
    top = record.card.get("sm_clock_max_mhz")
    if not clocks or not top:
        return skip(f"{_who(record)}: SM clock or its maximum not readable")
    median = statistics.median(clocks)
    capped = sum(1 for s in loaded if (s.get("reasons") or 0) & REASON_SW_POWER_CAP)
    cap_share = capped / len(loaded)
    measured = {
        "sm_clock_median_mhz": median,
        "sm_clock_max_mhz": top,
        "ratio": round(median / top, 3),
        "power_cap_share": round(cap_share, 3),
        "power_limit_w": record.card.get("power_limit_w"),
    }
    # Holding the admin's power limit is the card doing what it was told: said, never failed.
    capping = (
        f"; held at its power limit ({measured['power_limit_w']} W) in {cap_share:.0%} of samples"
        if capped
        else ""
    )
    if median < floor * top:
        return fail(
            f"{_who(record)}: SM clock under full load {median:.0f} MHz, {median / top:.0%} of "
            f"its maximum {top} MHz (floor {floor:.0%}){capping}",
            **measured,
        )
    return ok(f"SM clock under load {median:.0f} of {top} MHz{capping}", **measured)


def judge_pcie(record: DeviceRecord) -> Judgement:
    if record.gpu is None:
        return skip("CPU run: no PCIe link")
    loaded = [
        s for s in loaded_samples(record.samples) if s.get("pcie_gen") and s.get("pcie_width")
    ]
    if not loaded:
        return skip(f"{_who(record)}: PCIe link not readable under load")
    best_gen = max(s["pcie_gen"] for s in loaded)
    best_width = max(s["pcie_width"] for s in loaded)
    dropped = [s for s in loaded if s["pcie_gen"] < best_gen or s["pcie_width"] < best_width]
    measured = {"gen": best_gen, "width": best_width, "samples": len(loaded)}
    if dropped:
        first = dropped[0]
        return fail(
            f"{_who(record)}: link dropped from Gen{best_gen} x{best_width} to "
            f"Gen{first['pcie_gen']} x{first['pcie_width']} under load, {first['t']:.0f} s into "
            f"the run ({len(dropped)} of {len(loaded)} samples)",
            dropped_samples=len(dropped),
            **measured,
        )
    return ok(f"Gen{best_gen} x{best_width} held under load", **measured)


def judge_dcgm(dcgm: dict[str, Any] | None) -> Judgement:
    if not dcgm or not dcgm.get("present"):
        return skip((dcgm or {}).get("why") or "dcgmi not on this host: DCGM diagnostics not run")
    if dcgm.get("error"):
        return Judgement(Status.ERROR, f"dcgmi diag -r {dcgm.get('level')}: {dcgm['error']}")
    failed = dcgm.get("failed") or []
    measured = {"level": dcgm.get("level"), "tests": dcgm.get("tests", 0)}
    if failed:
        return fail(f"dcgmi diag -r {dcgm['level']}: {'; '.join(failed[:5])}", **measured)
    return ok(f"dcgmi diag -r {dcgm['level']}: {measured['tests']} tests passed", **measured)


def judge_run(run: dict[str, Any]) -> Judgement:
    done = run.get("duration_s", 0.0) / 60
    wanted = run.get("minutes", 0.0)
    devices = run.get("devices", 0)
    measured = {"minutes": round(done, 3), "minutes_requested": wanted, "devices": devices}
    if run.get("interrupted"):
        return fail(
            f"stopped by {run['interrupted']} after {done:.2f} of {wanted:g} min: partial results",
            **measured,
        )
    if run.get("crashed"):
        return Judgement(Status.ERROR, f"worker crashed: {run['crashed']}", measured)
    return ok(f"{done:.2f} min of full load on {devices} device(s) at once", **measured)


DEVICE_VERDICTS = (
    ("burnin.gemm", judge_gemm),
    ("burnin.memory", judge_memory),
    ("burnin.copies", judge_copies),
    ("burnin.xid", judge_xid),
    ("burnin.ecc", judge_ecc),
    ("burnin.thermal", judge_thermal),
    ("burnin.clocks", judge_clocks),
    ("burnin.pcie", judge_pcie),
)


def _result(check_id: str, judgement: Judgement) -> CheckResult:
    severity = Severity.ADVISORY if check_id in ADVISORY else Severity.REQUIRED
    return CheckResult(
        check_id,
        judgement.status,
        judgement.reason,
        severity=severity,
        gpu=judgement.gpu,
        measurements=dict(judgement.measurements),
    )


def judge_device(record: DeviceRecord) -> list[CheckResult]:
    results = []
    for check_id, verdict in DEVICE_VERDICTS:
        try:
            judgement = verdict(record)
        except Exception as exc:  # one broken verdict must not hide the others
            judgement = Judgement(Status.ERROR, f"verdict crashed: {type(exc).__name__}: {exc}")
        results.append(_result(check_id, replace(judgement, gpu=record.gpu)))
    return results


def judge(
    run: dict[str, Any], records: list[DeviceRecord], dcgm: dict[str, Any] | None
) -> list[CheckResult]:
    """Every verdict of a recorded run: the run itself, each device, DCGM."""
    results = [_result("burnin.run", judge_run(run))]
    for record in records:
        results += judge_device(record)
    results.append(_result("burnin.dcgm", judge_dcgm(dcgm)))
    return results


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
