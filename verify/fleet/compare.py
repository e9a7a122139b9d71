"""Each GPU against the median of its model across the fleet.

A card on a downtrained PCIe link or one that throttles still passes its own absolute floors in
an otherwise healthy lab; next to identical cards it stands out. Ratios are "performance
relative to the model's median": for throughput higher is better (value / median), for a time
lower is better (median / value), so a ratio under `flag_below` always means "slower".

A model's median is the median of its hosts' own medians: one host is one vote however many
cards it claims, so a rooted host reporting eight impossibly fast cards cannot make the honest
ones look slow. A card claiming more than IMPLAUSIBLE_ABOVE times its model's median is named as
implausible (its host is a suspect), never taken as the norm.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

IMPLAUSIBLE_ABOVE = 2.0


@dataclass(frozen=True)
class Metric:
    key: str
    check_id: str
    measurement: str
    label: str
    unit: str
    higher_is_better: bool


METRICS = (
    Metric("gemm_fp32", "workload.perf.gemm_fp32", "tflops", "GEMM fp32", "TFLOP/s", True),
    Metric("gemm_fp16", "workload.perf.gemm_fp16", "tflops", "GEMM fp16", "TFLOP/s", True),
    Metric("h2d", "workload.perf.h2d", "gb_per_s", "H2D", "GB/s", True),
    Metric("d2h", "workload.perf.d2h", "gb_per_s", "D2H", "GB/s", True),
    Metric("mlp_time", "workload.mlp", "train_time_s", "MLP time", "s", False),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value > 0 else None


def gpu_measurements(host: dict[str, Any]) -> dict[int, dict[str, float]]:
    """{gpu index: {metric key: value}} from one host's checks (GPU subjects only)."""
    wanted = {(m.check_id, m.measurement): m.key for m in METRICS}
    values: dict[int, dict[str, float]] = {}
    for check in host.get("checks") or []:
        gpu = check.get("gpu")
        if gpu is None:
            continue
        for name, raw in (check.get("measurements") or {}).items():
            key = wanted.get((check.get("check_id"), name))
            number = _number(raw)
            if key and number is not None:
                values.setdefault(gpu, {})[key] = number
    return values


def ratio(metric: Metric, value: float, median: float) -> float:
    return value / median if metric.higher_is_better else median / value


def compare_fleet(hosts: list[dict[str, Any]], *, flag_below: float = 0.8) -> dict[str, Any]:
    """Per-model medians and per-GPU ratios; GPUs with any ratio under flag_below are flagged."""
    per_gpu: list[dict[str, Any]] = []
    for host in hosts:
        names = {g.get("index"): g.get("name") for g in host.get("gpus") or []}
        for gpu, values in sorted(gpu_measurements(host).items()):
            model = names.get(gpu) or "unknown GPU"
            per_gpu.append({"host": host["host"], "gpu": gpu, "model": model, "values": values})

    models: dict[str, dict[str, Any]] = {}
    for entry in per_gpu:
        models.setdefault(entry["model"], {"model": entry["model"], "gpus": 0, "samples": {}})
        model = models[entry["model"]]
        model["gpus"] += 1
        for key, value in entry["values"].items():
            model["samples"].setdefault(key, {}).setdefault(entry["host"], []).append(value)
    for model in models.values():
        samples = model.pop("samples")
        model["medians"] = {
            m.key: statistics.median(statistics.median(v) for v in samples[m.key].values())
            for m in METRICS
            if m.key in samples
        }

    for entry in per_gpu:
        medians = models[entry["model"]]["medians"]
        entry["ratios"] = {
            m.key: round(ratio(m, entry["values"][m.key], medians[m.key]), 3)
            for m in METRICS
            if m.key in entry["values"]
        }
        entry["flagged"] = [key for key, r in entry["ratios"].items() if r < flag_below]
        entry["implausible"] = [key for key, r in entry["ratios"].items() if r > IMPLAUSIBLE_ABOVE]

    return {
        "flag_below": flag_below,
        "metrics": [
            {"key": m.key, "label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better}
            for m in METRICS
        ],
        "models": sorted(models.values(), key=lambda m: m["model"]),
        "gpus": per_gpu,
        "flagged": [
            {"host": e["host"], "gpu": e["gpu"], "model": e["model"], "metrics": e["flagged"]}
            for e in per_gpu
            if e["flagged"]
        ],
        # Hosts whose cards claim what no card of their model does: suspects, not references.
        "suspects": sorted({e["host"] for e in per_gpu if e["implausible"]}),
    }
