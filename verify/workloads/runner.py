"""Run the selected workload checks on every GPU (or once on the CPU) through one adapter.

Contract (`verify.cli` calls it):

    run_workloads(*, framework: str, gpu_indices: list[int], cpu_only: bool,
                  expectations: dict, only: Iterable[str] | None, skip: Iterable[str],
                  on_result: Callable[[CheckResult], None] | None = None,
                  gpu_names: dict[int, str] | None = None,
                  probe: dict | None = None,
                  contexts: dict[int, GpuContext] | None = None) -> list[CheckResult]

Each workload check runs once per NVML GPU index, or once on the CPU when `cpu_only` is true;
results carry `gpu` (the NVML index, None on the CPU) and `framework` ({"name", "version",
"device"}; version is None when the framework cannot be imported).

- `contexts`: NVML index -> GpuContext (verify/workloads/spec.py): the CUDA device that GPU is
  (mapped by PCI bus id / UUID, verify/cuda_devices.py), its link maxima, its load sampler. The
  checks run on that CUDA ordinal, and each result's measurements name `gpu_uuid`,
  `pci_bus_id` and `cuda_device`. A GPU with no CUDA device fails every check with the reason
  (skipped when CUDA_VISIBLE_DEVICES hides it on purpose). Without `contexts` the CUDA ordinal
  is taken to be the NVML index (tests; a host where CUDA's order is PCI bus order).
Results come in GPU order, and within one GPU in the order of `CHECK_IDS`; `on_result` is called
with each as soon as it exists.

- `framework`: "mxnet" | "torch"; anything else raises ValueError (bad usage).
- `probe`: the adapter's `probe()` already taken for the snapshot, so the framework is probed
  once per run; None probes here.
- `gpu_names`: index → exact NVML name, used to look up the per-model floors of the perf checks;
  without it the floor comparison is `skipped`.
- `only` / `skip`: selectors, as verify/selection.py matches them.
- Not `cpu_only` and no GPU index: every check FAILS ("no GPU to run ... on"), never passes.
- The framework cannot be imported: every selected check FAILS with the import error.
- A check that raises becomes `Status.ERROR` with a one-line reason; the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from verify import frameworks
from verify.registry import CheckSpec, Judgement, fail
from verify.result import CheckResult, Status
from verify.selection import selected
from verify.workloads import CHECKS
from verify.workloads.spec import GpuContext, WorkloadRun

NO_GPU_FOUND = "none was found (--cpu-only runs them on the CPU)"


def no_gpu_result(check_id: str, why: str, **extra: Any) -> CheckResult:
    """The one failure for a GPU run without a GPU: it must never read as passed or skipped."""
    return CheckResult(
        check_id, Status.FAILED, f"no GPU to run the workload checks on: {why}", **extra
    )


def _device_label(gpu: int | None) -> str:
    return "cpu" if gpu is None else f"gpu({gpu})"


def run_workloads(
    *,
    framework: str,
    gpu_indices: list[int],
    cpu_only: bool,
    expectations: dict,
    only: Iterable[str] | None,
    skip: Iterable[str],
    on_result: Callable[[CheckResult], None] | None = None,
    gpu_names: dict[int, str] | None = None,
    probe: dict[str, Any] | None = None,
    contexts: dict[int, GpuContext] | None = None,
) -> list[CheckResult]:
    adapter = frameworks.get_adapter(framework)
    checks = [spec for spec in CHECKS if selected(spec.check_id, only, skip or ())]
    subjects: list[int | None] = [None] if cpu_only else list(gpu_indices)
    results: list[CheckResult] = []
    if not checks:
        return results
    if not subjects:
        nowhere = {"name": adapter.name, "version": None, "device": "none"}
        produced: Iterable[CheckResult] = (
            no_gpu_result(spec.check_id, NO_GPU_FOUND, framework=nowhere) for spec in checks
        )
    else:
        probe = probe or adapter.probe()
        if probe["import_error"]:
            produced = _not_importable(adapter.name, probe["import_error"], subjects, checks)
        else:
            produced = _run_all(
                adapter,
                probe["version"],
                subjects,
                checks,
                expectations or {},
                gpu_names or {},
                contexts or {},
            )
    for item in produced:
        results.append(item)
        if on_result is not None:
            on_result(item)
    return results


def _not_importable(
    name: str, why: str, subjects: list[int | None], checks: list[CheckSpec]
) -> Iterator[CheckResult]:
    for gpu in subjects:
        framework = {"name": name, "version": None, "device": _device_label(gpu)}
        for spec in checks:
            judgement = fail(f"{name} cannot be imported: {why}")
            yield spec.result(replace(judgement, gpu=gpu), framework=framework)


def _identity(context: GpuContext | None) -> dict[str, Any]:
    """What names the card in every result: a lab finds it by UUID and bus id, not by index."""
    if context is None:
        return {}
    target = context.target
    return {
        "gpu_uuid": target.uuid,
        "pci_bus_id": target.pci_bus_id,
        "cuda_device": target.ordinal,
    }


def _unmapped(
    context: GpuContext, checks: list[CheckSpec], framework: dict[str, Any]
) -> Iterator[CheckResult]:
    target = context.target
    where = f"NVML GPU {target.nvml_index} ({target.pci_bus_id}, {target.uuid})"
    status = Status.SKIPPED if target.hidden else Status.FAILED
    judgement = Judgement(status, f"{where}: {target.why_not}", _identity(context))
    for spec in checks:
        yield spec.result(replace(judgement, gpu=target.nvml_index), framework=dict(framework))


def _run_all(
    adapter: frameworks.FrameworkAdapter,
    version: str | None,
    subjects: list[int | None],
    checks: list[CheckSpec],
    expectations: dict,
    gpu_names: dict[int, str],
    contexts: dict[int, GpuContext],
) -> Iterator[CheckResult]:
    # Shared by every subject: the CPU reference run of the MLP is trained once.
    shared: dict[Any, Any] = {}
    for gpu in subjects:
        context = contexts.get(gpu) if gpu is not None else None
        framework = {"name": adapter.name, "version": version, "device": _device_label(gpu)}
        if context is not None and context.target.ordinal is None:
            framework["device"] = "none"
            yield from _unmapped(context, checks, framework)
            continue
        ordinal = context.target.ordinal if context is not None else gpu
        identity = _identity(context)
        try:
            device = adapter.device(ordinal)
        except Exception as error:
            missing = Judgement(
                Status.ERROR, f"no device: {frameworks.describe_error(error)}", identity
            )
            for spec in checks:
                yield spec.result(replace(missing, gpu=gpu), framework=dict(framework))
            continue
        framework["device"] = device.label
        gpu_name = gpu_names.get(gpu) if gpu is not None else None
        run = WorkloadRun(adapter, device, gpu_name, expectations, shared, context)
        for spec in checks:
            started = time.perf_counter()
            try:
                judgement = spec.function(run)
            except Exception as error:
                judgement = Judgement(Status.ERROR, frameworks.describe_error(error))
            measured = {**judgement.measurements, **identity}
            yield spec.result(
                replace(judgement, gpu=gpu, measurements=measured),
                framework=dict(framework),
                duration_s=round(time.perf_counter() - started, 4),
            )
