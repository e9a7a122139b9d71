"""Host checks: pure functions `snapshot + expectations -> judgements`, a module per concern,
each declared once with `verify.registry.check`.

`run_host_checks` runs them in catalogue order (driver, then GPUs, then the framework build),
times each, turns a crashing check into an `error` result, and honours --only/--skip and
--cpu-only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from verify import registry
from verify.checks import build, driver, gpu, xid
from verify.registry import CheckSpec, Judgement
from verify.result import CheckResult
from verify.selection import selected

CATALOGUE: list[CheckSpec] = registry.collect((driver, gpu, xid, build))
CPU_ONLY_REASON = "--cpu-only: GPU checks not run"


def _judge(
    spec: CheckSpec, snapshot: dict[str, Any], expectations: dict[str, Any], cpu_only: bool
) -> list[Judgement]:
    if cpu_only and spec.needs_gpu:
        return [registry.skip(CPU_ONLY_REASON)]
    try:
        produced = spec.function(snapshot, expectations)
    except Exception as exc:
        # A check that crashes on an odd snapshot must not hide the other checks.
        return [registry.crashed(exc)]
    return [produced] if isinstance(produced, Judgement) else produced


def run_host_checks(
    snapshot: dict[str, Any],
    expectations: dict[str, Any],
    *,
    cpu_only: bool = False,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    for spec in CATALOGUE:
        if not selected(spec.check_id, only, skip):
            continue
        started = time.perf_counter()
        judged = _judge(spec, snapshot, expectations, cpu_only)
        duration = round((time.perf_counter() - started) / max(len(judged), 1), 6)
        for judgement in judged:
            results.append(spec.result(judgement, duration_s=duration))
            if on_result is not None:
                on_result(results[-1])
    return results
