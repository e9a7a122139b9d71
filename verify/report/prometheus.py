"""The per-host report as Prometheus text exposition, for node_exporter's textfile collector
(`python -m verify --prometheus-textfile PATH`; the metrics are listed in verify/CONTRACTS.md
section 6).

`render` is pure (report dict -> text); `write` is the edge: the collector reads the directory
at any moment, so the file is replaced whole (a temporary name it ignores, then a rename).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from pathlib import Path
from typing import Any

# labrig_check_status's values: what an alert compares, so they never change meaning.
STATUS_VALUES = {"passed": 0, "failed": 1, "error": 2, "skipped": 3}

# (check id, measurement) -> (metric, fixed labels): the measured values a dashboard trends.
MEASUREMENTS: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("workload.perf.gemm_fp32", "tflops"): ("labrig_gemm_tflops", {"precision": "fp32"}),
    ("workload.perf.gemm_fp16", "tflops"): ("labrig_gemm_tflops", {"precision": "fp16"}),
    ("workload.perf.h2d", "gb_per_s"): ("labrig_copy_gb_per_s", {"direction": "h2d"}),
    ("workload.perf.d2h", "gb_per_s"): ("labrig_copy_gb_per_s", {"direction": "d2h"}),
    ("workload.mlp", "accuracy"): ("labrig_mlp_accuracy", {}),
    ("workload.mlp", "train_time_s"): ("labrig_mlp_train_seconds", {}),
    ("gpu.ecc", "volatile_uncorrected"): ("labrig_gpu_ecc_volatile_uncorrected_errors", {}),
    ("gpu.ecc", "aggregate_uncorrected"): ("labrig_gpu_ecc_aggregate_uncorrected_errors", {}),
    ("gpu.xid", "events"): ("labrig_gpu_xid_events", {}),
    ("gpu.temperature", "temperature_c"): ("labrig_gpu_temperature_celsius", {}),
}

HELP = {
    "labrig_check_status": "Each check's state in the last run: 0 passed, 1 failed, 2 error, "
    "3 skipped (gpu is the NVML index, empty for a host-level check).",
    "labrig_check_reason_info": "Why a check failed or errored in the last run (value always 1).",
    "labrig_gemm_tflops": "GEMM throughput measured on the GPU (or the CPU in --cpu-only).",
    "labrig_copy_gb_per_s": "Pinned host-device copy bandwidth measured on the GPU.",
    "labrig_mlp_accuracy": "Training accuracy the seed's MLP reached.",
    "labrig_mlp_train_seconds": "Seconds the seed's MLP took to train.",
    "labrig_gpu_ecc_volatile_uncorrected_errors": "Uncorrected ECC errors since boot.",
    "labrig_gpu_ecc_aggregate_uncorrected_errors": "Uncorrected ECC errors over the GPU's life.",
    "labrig_gpu_xid_events": "Xid events in the kernel log since boot (a new one raises it).",
    "labrig_gpu_temperature_celsius": "GPU temperature when the suite read it.",
    "labrig_verify_checks": "Checks of the last run by state.",
    "labrig_verify_exit_code": "Exit code of the last run: 0 fit for work, 1 a required check "
    "failed, 2 the suite could not run.",
    "labrig_verify_last_run_timestamp_seconds": "When the last run started (Unix time).",
    "labrig_verify_duration_seconds": "How long the last run took.",
    "labrig_build_info": "Versions the last run found (value always 1).",
}

# Exposition format: a label value escapes backslash, double quote and newline; HELP text
# escapes backslash and newline.
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})
# A reason is one line for an alert's text; the JSON report keeps the whole of it.
REASON_MAX_CHARS = 300


def escape_label(text: str) -> str:
    return text.translate(_LABEL_ESCAPES)


def format_value(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if float(number).is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(float(number))


def _sample(name: str, labels: dict[str, str], number: float) -> str:
    if not labels:
        return f"{name} {format_value(number)}"
    inner = ",".join(f'{key}="{escape_label(str(val))}"' for key, val in labels.items())
    return f"{name}{{{inner}}} {format_value(number)}"


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def _gpu_labels(report: dict[str, Any], gpu: int | None) -> dict[str, str]:
    """The subject's labels: the GPU's NVML index, UUID and model (empty for the host)."""
    if gpu is None:
        return {"gpu": "", "uuid": "", "model": ""}
    card = next((g for g in report.get("gpus") or [] if g.get("index") == gpu), {})
    return {"gpu": str(gpu), "uuid": card.get("uuid") or "", "model": card.get("name") or ""}


def _started_epoch(report: dict[str, Any]) -> float | None:
    try:
        return dt.datetime.fromisoformat(report["started"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= REASON_MAX_CHARS else flat[: REASON_MAX_CHARS - 1] + "…"


def _measurements(check: dict[str, Any]) -> dict[str, Any]:
    measured = dict(check.get("measurements") or {})
    if check["check_id"] == "gpu.xid" and check.get("status") == "passed":
        # A clean log records only `xids: []`: the count is 0, and the series must exist for
        # an alert to see it rise.
        measured.setdefault("events", len(measured.get("xids") or []))
    return measured


def samples(report: dict[str, Any]) -> dict[str, list[str]]:
    """Metric name -> its sample lines, in the order the metrics are first met."""
    out: dict[str, list[str]] = {}

    def add(name: str, labels: dict[str, str], number: float) -> None:
        out.setdefault(name, []).append(_sample(name, labels, number))

    counts = dict.fromkeys(STATUS_VALUES, 0)
    for check in report.get("checks") or []:
        status = check.get("status")
        if status not in STATUS_VALUES:
            continue
        counts[status] += 1
        subject = _gpu_labels(report, check.get("gpu"))
        severity = check.get("severity") or "required"
        add(
            "labrig_check_status",
            {"check": check["check_id"], **subject, "severity": severity},
            STATUS_VALUES[status],
        )
        if status in ("failed", "error"):
            reason = {"check": check["check_id"], "gpu": subject["gpu"]}
            add("labrig_check_reason_info", {**reason, "reason": _one_line(check["reason"])}, 1)
        for key, raw in _measurements(check).items():
            metric = MEASUREMENTS.get((check["check_id"], key))
            number = _number(raw)
            if metric and number is not None:
                name, fixed = metric
                add(name, {**subject, **fixed}, number)
    for status, count in counts.items():
        add("labrig_verify_checks", {"status": status}, count)
    add("labrig_verify_exit_code", {}, report.get("exit_code", 2))
    started = _started_epoch(report)
    if started is not None:
        add("labrig_verify_last_run_timestamp_seconds", {}, started)
    add("labrig_verify_duration_seconds", {}, float(report.get("duration_s") or 0.0))
    framework = report.get("framework") or {}
    versions = report.get("versions") or {}
    described = " ".join(part for part in (framework.get("name"), framework.get("version")) if part)
    build = {
        "labrig_version": report.get("labrig_version") or "",
        "driver": versions.get("driver") or "",
        "cuda": versions.get("cuda_driver") or "",
        "framework": described,
    }
    add("labrig_build_info", build, 1)
    return out


def render(report: dict[str, Any]) -> str:
    """The report's metrics as text exposition (format 0.0.4), one HELP/TYPE block per metric."""
    lines: list[str] = []
    for name, lines_of_metric in samples(report).items():
        lines.append(f"# HELP {name} {HELP[name].translate(_HELP_ESCAPES)}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(lines_of_metric)
    return "\n".join(lines) + "\n"


def write_atomically(text: str, path: str | os.PathLike[str], *, mode: int = 0o644) -> None:
    """Replace `path` whole: node_exporter reads only *.prom, so the temporary name is hidden
    from it, and the rename is atomic within the directory."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp's 0600 would hide the file from node_exporter's own user.
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    write_atomically(render(report), path)
