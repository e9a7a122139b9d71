"""Host checks: pure functions `snapshot + expectations -> list[CheckResult]`, a module per concern.

`run_host_checks` runs them in catalogue order (driver, then GPUs, then the framework build),
times each, turns a crashing check into an `error` result, and honours --only/--skip and
--cpu-only.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from verify.checks import build, driver, gpu
from verify.checks.common import CheckSpec
from verify.result import CheckResult, Status

CATALOGUE: list[CheckSpec] = [*driver.CHECKS, *gpu.CHECKS, *build.CHECKS]
CPU_ONLY_REASON = "--cpu-only: GPU checks not run"
WORKLOAD_PREFIX = "workload"


def matches(check_id: str, selector: str) -> bool:
    """A selector is a check id, a dotted prefix of one (`gpu` selects `gpu.ecc`), or a shell
    pattern (`*.gemm_*`), the same rule verify.workloads applies to its own ids."""
    return (
        check_id == selector
        or check_id.startswith(selector.rstrip(".") + ".")
        or fnmatch.fnmatchcase(check_id, selector)
    )


def selected(check_id: str, only: Iterable[str] | None, skip: Iterable[str]) -> bool:
    if only and not any(matches(check_id, selector) for selector in only):
        return False
    return not any(matches(check_id, selector) for selector in skip)


def unknown_selectors(
    selectors: Iterable[str], workload_ids: Iterable[str] | None = None
) -> list[str]:
    """Selectors that select nothing. Without the workloads' id list, any `workload*` passes."""
    known = [spec.check_id for spec in CATALOGUE]
    known += [WORKLOAD_PREFIX, *(workload_ids or ())]
    unknown = []
    for selector in selectors:
        if workload_ids is None and selector.startswith(WORKLOAD_PREFIX):
            continue
        if not any(matches(check_id, selector) for check_id in known):
            unknown.append(selector)
    return unknown


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
        if cpu_only and spec.needs_gpu:
            produced = [
                CheckResult(spec.check_id, Status.SKIPPED, CPU_ONLY_REASON, severity=spec.severity)
            ]
        else:
            try:
                produced = spec.function(snapshot, expectations)
            except Exception as exc:
                # A check that crashes on an odd snapshot must not hide the other checks.
                produced = [
                    CheckResult(
                        spec.check_id,
                        Status.ERROR,
                        f"check crashed: {type(exc).__name__}: {exc}",
                        severity=spec.severity,
                    )
                ]
        duration = (time.perf_counter() - started) / max(len(produced), 1)
        for item in produced:
            timed = replace(item, duration_s=round(duration, 6))
            results.append(timed)
            if on_result is not None:
                on_result(timed)
    return results
