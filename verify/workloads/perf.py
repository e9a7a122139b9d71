"""Throughput per device: matrix products (float32, float16) and host↔device copy rates, each
compared with a per-model floor from verify/data/perf_floors.yml."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from verify import pcie
from verify.checks.gpu import HARMFUL_CLOCK_EVENTS, clock_event_names
from verify.registry import Judgement, check, fail, ok, skip
from verify.workloads import spec

if TYPE_CHECKING:
    from verify.workloads.spec import WorkloadRun

FLOORS_FILE = "data/perf_floors.yml"
FLOOR_KEYS = ("gemm_fp32_tflops", "gemm_fp16_tflops", "h2d_gb_per_s", "d2h_gb_per_s")
COPY_FLOOR_KEYS = ("h2d_gb_per_s", "d2h_gb_per_s")
# The table's copy floors are half the rate of a Gen-max x16 link.
FLOOR_LINK_WIDTH = 16


@functools.cache
def load_floors() -> dict[str, dict[str, float]]:
    """Exact NVML GPU name → {floor key: value}; the file's `gpus` mapping."""
    import yaml

    text = resources.files("verify").joinpath(FLOORS_FILE).read_text(encoding="utf-8")
    document = yaml.safe_load(text) or {}
    table = document.get("gpus") or {}
    floors: dict[str, dict[str, float]] = {}
    for name, entry in table.items():
        floors[str(name)] = {key: float(entry[key]) for key in FLOOR_KEYS if key in entry}
    return floors


def _sizes(run: WorkloadRun) -> spec.PerfSizes:
    return spec.CPU_PERF if run.device.gpu is None else spec.GPU_PERF


def _median_seconds(
    run: WorkloadRun, operation: Callable[[], Any], sizes: spec.PerfSizes
) -> tuple[float, int]:
    """Median seconds of one `operation` over the repeats, after warm-up, with the device
    synchronised around every timed repeat; also returns how many calls one repeat made."""
    adapter, device = run.adapter, run.device
    one_call_s = 0.0
    for _ in range(spec.PERF_WARMUP_CALLS):
        adapter.synchronize(device)
        started = time.perf_counter()
        operation()
        adapter.synchronize(device)
        one_call_s = time.perf_counter() - started
    calls = spec.calls_per_repeat(one_call_s, sizes)
    timings = []
    for _ in range(sizes.repeats):
        adapter.synchronize(device)
        started = time.perf_counter()
        for _ in range(calls):
            operation()
        adapter.synchronize(device)
        timings.append((time.perf_counter() - started) / calls)
    return statistics.median(timings), calls


def judge(
    run: WorkloadRun, floor_key: str, value: float, summary: str, measurements: dict[str, Any]
) -> Judgement:
    """Compare one measured rate with the floor for this GPU's model (scaled)."""
    if run.device.gpu is None:
        return skip(f"{summary}; no floor for the CPU (for the record only)", **measurements)
    if not run.gpu_name:
        return skip(f"{summary}; GPU model unknown, no floor looked up", **measurements)
    entry = load_floors().get(run.gpu_name, {})
    if floor_key not in entry:
        return skip(
            f"{summary}; no floor for {run.gpu_name!r} in verify/{FLOORS_FILE}", **measurements
        )
    floor = entry[floor_key] * run.setting("perf_floor_scale")
    link = ""
    if floor_key in COPY_FLOOR_KEYS:
        scale, link = copy_floor_scale(run)
        floor *= scale
        measurements = {**measurements, "link_scale": round(scale, 4)}
    floor = round(floor, 3)
    if value >= floor:
        return ok(f"{summary} ≥ floor {floor:g}{link}", **measurements, floor=floor)
    return fail(
        f"{summary} < floor {floor:g} for {run.gpu_name}{link}", **measurements, floor=floor
    )


def copy_floor_scale(run: WorkloadRun) -> tuple[float, str]:
    """(factor, ' for Gen4 x8 (card max Gen4 x16, ...)'): a copy is held to the link the card
    can train to in this host (the lower of card and host maxima), not to Gen-max x16, so an x8
    slot or a Gen3 host is not a failure; a link below that is workload.perf.pcie_link's to fail."""
    context = run.context
    if context is None or not context.card.gen:
        return 1.0, ""
    best = pcie.attainable(context.card, context.host)
    reference = pcie.Link(context.card.gen, FLOOR_LINK_WIDTH)
    scale = pcie.floor_scale(best, reference)
    if scale is None:
        return 1.0, ""
    return scale, f" for {pcie.describe(best, context.card, context.host)}"


def _gemm(run: WorkloadRun, dtype: str, floor_key: str) -> Judgement:
    adapter, device = run.adapter, run.device
    if dtype not in adapter.matmul_dtypes(device):
        return skip(f"{adapter.name} has no {dtype} matrix product on {device.label}")
    sizes = _sizes(run)
    n = sizes.gemm_size
    a = adapter.random_normal((n, n), dtype, device, seed=1)
    b = adapter.random_normal((n, n), dtype, device, seed=2)
    # The GPU's link and clock reasons are read while it is busy: the only time they mean much.
    with run.sampling():
        seconds, calls = _median_seconds(run, lambda: adapter.matmul(a, b), sizes)
    tflops = spec.gemm_tflops(n, seconds)
    measurements = {
        "tflops": round(tflops, 4),
        "size": n,
        "dtype": dtype,
        "repeats": sizes.repeats,
        "calls_per_repeat": calls,
        "median_s": seconds,
    }
    summary = f"{dtype} {n}x{n} product on {device.label}: {tflops:.3g} TFLOP/s"
    return judge(run, floor_key, tflops, summary, measurements)


def _copy(run: WorkloadRun, direction: str, floor_key: str) -> Judgement:
    adapter, device = run.adapter, run.device
    sizes = _sizes(run)
    elements = sizes.copy_bytes // 4
    host = adapter.pinned_host_buffer((elements,), "float32", device)
    if direction == "h2d":

        def operation() -> Any:
            return adapter.copy_to_device(host, device)

        arrow = f"host→{device.label}"
    else:
        on_device = adapter.copy_to_device(host, device)
        adapter.synchronize(device)

        def operation() -> Any:
            return adapter.copy_to_host(on_device, host)

        arrow = f"{device.label}→host"
    seconds, calls = _median_seconds(run, operation, sizes)
    gb_per_s = sizes.copy_bytes / seconds / 1e9
    measurements = {
        "gb_per_s": round(gb_per_s, 3),
        "bytes": sizes.copy_bytes,
        "repeats": sizes.repeats,
        "calls_per_repeat": calls,
        "median_s": seconds,
        "pinned": device.gpu is not None,
    }
    summary = f"{sizes.copy_bytes >> 20} MiB {arrow}: {gb_per_s:.3g} GB/s"
    return judge(run, floor_key, gb_per_s, summary, measurements)


@check("workload.perf.gemm_fp32", description="float32 GEMM TFLOP/s >= the model's floor")
def check_gemm_fp32(run: WorkloadRun) -> Judgement:
    return _gemm(run, "float32", "gemm_fp32_tflops")


@check("workload.perf.gemm_fp16", description="float16 GEMM TFLOP/s >= the model's floor")
def check_gemm_fp16(run: WorkloadRun) -> Judgement:
    return _gemm(run, "float16", "gemm_fp16_tflops")


def _load_samples(run: WorkloadRun) -> tuple[list[dict[str, Any]] | None, Judgement | None]:
    """The samples read under load, or the judgement for having none."""
    if run.device.gpu is None:
        return None, skip("runs on the CPU: no GPU link or clocks to sample")
    samples = run.load_samples
    if samples is None:
        return None, skip("no NVML sampler for this GPU: nothing read under load")
    good = [sample for sample in samples if "error" not in sample]
    if not good:
        if samples:
            return None, fail(f"reading NVML under load failed: {samples[-1]['error']}")
        return None, skip("nothing sampled under load: the GEMM checks did not run")
    return good, None


@check(
    "workload.perf.pcie_link",
    description="PCIe link during the GEMM == the lower of card and host maxima",
)
def check_pcie_link(run: WorkloadRun) -> Judgement:
    samples, missing = _load_samples(run)
    if missing:
        return missing
    # The best reading: a link takes a moment to retrain up from its idle Gen1.
    trained = pcie.Link(max(s["gen"] for s in samples), max(s["width"] for s in samples))
    card, host = run.context.card, run.context.host
    text = f"{pcie.describe(trained, card, host)} under load ({len(samples)} samples)"
    measured = {
        "link": trained.label(),
        "card_max": card.label(),
        "host_max": host.label() if host.gen or host.width else None,
        "samples": len(samples),
    }
    problems = pcie.shortfalls(trained, card, host)
    if problems:
        return fail(f"{text}: {'; '.join(problems)}: reseat or move the card", **measured)
    return ok(text, **measured)


@check("workload.perf.throttle", description="no HW/thermal/power-brake slowdown during the GEMM")
def check_throttle_under_load(run: WorkloadRun) -> Judgement:
    samples, missing = _load_samples(run)
    if missing:
        return missing
    harmful = [s["reasons"] & HARMFUL_CLOCK_EVENTS for s in samples]
    seen = [mask for mask in harmful if mask]
    names = clock_event_names(0 if not seen else _union(seen))
    measured = {"samples": len(samples), "slowed_samples": len(seen), "reasons": names}
    if len(seen) >= 2:
        return fail(
            f"clocks held down by {', '.join(names)} in {len(seen)} of {len(samples)} samples "
            "under load",
            **measured,
        )
    if seen:
        return ok(
            f"{', '.join(names)} in 1 of {len(samples)} samples under load: reported, not failed",
            **measured,
        )
    return ok(
        f"no HW/thermal/power-brake slowdown in {len(samples)} samples under load", **measured
    )


def _union(masks: list[int]) -> int:
    combined = 0
    for mask in masks:
        combined |= mask
    return combined


@check("workload.perf.h2d", description="pinned host→device GB/s >= the model's floor")
def check_h2d(run: WorkloadRun) -> Judgement:
    return _copy(run, "h2d", "h2d_gb_per_s")


@check("workload.perf.d2h", description="device→pinned host GB/s >= the model's floor")
def check_d2h(run: WorkloadRun) -> Judgement:
    return _copy(run, "d2h", "d2h_gb_per_s")
