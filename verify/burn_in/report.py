"""The burn-in's JSON: every key of a verify host report (CONTRACTS.md section 2), so the fleet
report reads it with no special case, plus `burn_in` with each device's time series."""

from __future__ import annotations

import dataclasses
from typing import Any

from verify.burn_in.plots import FLEET_POINTS, chart_series
from verify.outcome import RunInfo
from verify.report import json_report
from verify.result import CheckResult

BURN_IN_SCHEMA = "labrig.burn-in/1"


def build_burn_in_report(
    snapshot: dict[str, Any],
    results: list[CheckResult],
    outcome: Any,
    run: RunInfo,
) -> dict[str, Any]:
    run = dataclasses.replace(run, phases={"load_s": outcome.run["duration_s"]})
    report = json_report.build_report(snapshot, results, run)
    report["schema"] = BURN_IN_SCHEMA
    report["burn_in"] = {
        **outcome.run,
        "dcgm": outcome.dcgm,
        "devices": [record.to_dict() for record in outcome.records],
    }
    return report


def burn_in_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the fleet report shows of a host's burn-in: verdict, length, per-device medians and
    each device's charts, thinned."""
    burn_in = report.get("burn_in") or {}
    summary = json_report.summarise([CheckResult.from_dict(c) for c in report.get("checks") or []])
    devices = []
    for device in burn_in.get("devices") or []:
        series = device.get("series") or {}
        temps = [t for t in series.get("temperature_c") or [] if t is not None]
        rates = device.get("gemm_series", {}).get("tflops") or []
        devices.append(
            {
                "gpu": device.get("gpu"),
                "label": device.get("label"),
                "iterations": (device.get("gemm") or {}).get("iterations"),
                "memory_passes": len((device.get("memory") or {}).get("passes") or []),
                "tflops_median": sorted(rates)[len(rates) // 2] if rates else None,
                "temperature_max_c": max(temps) if temps else None,
                "name": device.get("name"),
                "uuid": device.get("uuid"),
                "dtypes": (device.get("gemm") or {}).get("dtypes") or [],
                "dtypes_not_run": (device.get("gemm") or {}).get("dtypes_not_run") or {},
                "charts": chart_series(device, FLEET_POINTS),
            }
        )
    return {
        "started": report.get("started"),
        "minutes": burn_in.get("minutes"),
        "duration_s": burn_in.get("duration_s"),
        "interrupted": burn_in.get("interrupted"),
        "mode": report.get("mode"),
        "ok": summary["ok"],
        "counts": {k: summary[k] for k in ("passed", "failed", "skipped", "error")},
        "first_failure": summary.get("first_failure"),
        "dcgm": bool((burn_in.get("dcgm") or {}).get("present")),
        "dcgm_why_not": (burn_in.get("dcgm") or {}).get("why"),
        "devices": devices,
    }
