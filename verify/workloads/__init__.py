"""Workload checks defined once (data, model, thresholds) and run through a framework adapter.

Contract (owned by the workloads work; `verify.cli` calls it):

    run_workloads(*, framework: str, gpu_indices: list[int], cpu_only: bool,
                  expectations: dict, only: set[str] | None, skip: set[str],
                  on_result: Callable[[CheckResult], None] | None = None,
                  gpu_names: dict[int, str] | None = None) -> list[CheckResult]

Each workload check runs once per GPU index (device gpu(i)), or once on the CPU when
`cpu_only` is true; results carry `gpu` (the index, None on the CPU) and `framework`
({"name", "version", "device"}; version is None when the framework cannot be imported).
Results come in GPU order, and within one GPU in the order of `CHECK_IDS`; `on_result` is called
with each as soon as it exists.

- `framework`: "mxnet" | "torch"; anything else raises ValueError (bad usage).
- `gpu_names`: index → exact NVML name, used to look up the per-model floors of the perf checks
  in verify/data/perf_floors.yml; without it the floor comparison is `skipped`.
- `only` / `skip`: check ids; a selector matches its id exactly, any id below it
  ("workload.smoke" matches "workload.smoke.gradient"), or as a shell pattern ("*.gemm_*").
- `expectations` keys read: `mlp_min_accuracy` (default 0.97), `mlp_samples` (the seed's
  `sample_density`, i.e. uniform draws before the ±0.1 band is dropped; default 50 → 41
  points), `perf_floor_scale` (multiplies every floor; default 1.0).
- Not `cpu_only` and no GPU index: every check FAILS ("no GPU to run on"), never passes.
- The framework cannot be imported: every selected check FAILS with the import error.
- A check that raises becomes `Status.ERROR` with a one-line reason; the others still run.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import Callable, Iterable
from typing import Any

from verify import frameworks
from verify.result import CheckResult, Status, failed

CHECK_IDS = (
    "workload.smoke.elementwise",
    "workload.smoke.gradient",
    "workload.smoke.matmul",
    "workload.smoke.roundtrip",
    "workload.mlp",
    "workload.perf.gemm_fp32",
    "workload.perf.gemm_fp16",
    "workload.perf.h2d",
    "workload.perf.d2h",
)


@dataclasses.dataclass
class WorkloadRun:
    """What a check function gets: the adapter, the device of this subject, the settings, and
    results shared between subjects (the CPU reference MLP, the floors table)."""

    adapter: frameworks.FrameworkAdapter
    device: frameworks.Device
    gpu_name: str | None
    settings: Any  # spec.Settings
    shared: dict[str, Any]

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]


def selector_matches(selector: str, check_id: str) -> bool:
    return (
        check_id == selector
        or check_id.startswith(selector.rstrip(".") + ".")
        or fnmatch.fnmatchcase(check_id, selector)
    )


def is_selected(check_id: str, only: set[str] | None, skip: Iterable[str]) -> bool:
    if only is not None and not any(selector_matches(s, check_id) for s in only):
        return False
    return not any(selector_matches(s, check_id) for s in skip)


def _check_functions() -> dict[str, Callable[[WorkloadRun], CheckResult]]:
    # Imported here: the check modules import this package for WorkloadRun.
    from verify.workloads import mlp, perf, smoke

    return {
        "workload.smoke.elementwise": smoke.check_elementwise,
        "workload.smoke.gradient": smoke.check_gradient,
        "workload.smoke.matmul": smoke.check_matmul,
        "workload.smoke.roundtrip": smoke.check_roundtrip,
        "workload.mlp": mlp.check_mlp,
        "workload.perf.gemm_fp32": perf.check_gemm_fp32,
        "workload.perf.gemm_fp16": perf.check_gemm_fp16,
        "workload.perf.h2d": perf.check_h2d,
        "workload.perf.d2h": perf.check_d2h,
    }


def _generic_device_label(gpu: int | None) -> str:
    return "cpu" if gpu is None else f"gpu({gpu})"


def run_workloads(
    *,
    framework: str,
    gpu_indices: list[int],
    cpu_only: bool,
    expectations: dict,
    only: set[str] | None,
    skip: set[str],
    on_result: Callable[[CheckResult], None] | None = None,
    gpu_names: dict[int, str] | None = None,
) -> list[CheckResult]:
    from verify.workloads.spec import Settings

    adapter = frameworks.get_adapter(framework)
    check_ids = [check_id for check_id in CHECK_IDS if is_selected(check_id, only, skip or set())]
    results: list[CheckResult] = []

    def emit(result: CheckResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    if not check_ids:
        return results

    subjects: list[int | None] = [None] if cpu_only else list(gpu_indices)
    if not subjects:
        for check_id in check_ids:
            emit(
                failed(
                    check_id,
                    "no GPU to run on: none was found (--cpu-only runs the workloads on the CPU)",
                    framework={"name": adapter.name, "version": None, "device": "none"},
                )
            )
        return results

    probe = adapter.probe()
    if probe["import_error"]:
        for gpu in subjects:
            for check_id in check_ids:
                emit(
                    failed(
                        check_id,
                        f"{adapter.name} cannot be imported: {probe['import_error']}",
                        gpu=gpu,
                        framework={
                            "name": adapter.name,
                            "version": None,
                            "device": _generic_device_label(gpu),
                        },
                    )
                )
        return results

    check_functions = _check_functions()
    settings = Settings(dict(expectations or {}))
    shared: dict[str, Any] = {}
    for gpu in subjects:
        framework_info = {
            "name": adapter.name,
            "version": probe["version"],
            "device": _generic_device_label(gpu),
        }
        device: frameworks.Device | None = None
        device_error = ""
        try:
            device = adapter.device(gpu)
            framework_info["device"] = device.label
        except Exception as error:
            device_error = frameworks.describe_error(error)
        for check_id in check_ids:
            started = time.perf_counter()
            if device is None:
                result = CheckResult(check_id, Status.ERROR, f"no device: {device_error}")
            else:
                run = WorkloadRun(
                    adapter=adapter,
                    device=device,
                    gpu_name=(gpu_names or {}).get(gpu) if gpu is not None else None,
                    settings=settings,
                    shared=shared,
                )
                try:
                    result = check_functions[check_id](run)
                except Exception as error:
                    result = CheckResult(check_id, Status.ERROR, frameworks.describe_error(error))
            emit(
                dataclasses.replace(
                    result,
                    gpu=gpu,
                    framework=dict(framework_info),
                    duration_s=round(time.perf_counter() - started, 4),
                )
            )
    return results
