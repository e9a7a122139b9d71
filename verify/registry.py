"""How a check is declared: once, by a decorator on its function that names its id, severity and
description. The function returns judgements; whoever runs it stamps them with that id and
severity, so neither is ever written twice.

    @check("driver.nouveau", description="nouveau is not loaded")
    def nouveau(snapshot, expectations) -> Judgement: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from verify.result import CheckResult, Severity, Status


@dataclass(frozen=True)
class Judgement:
    """What a check says about one subject: the host (gpu None) or one GPU."""

    status: Status
    reason: str
    measurements: dict[str, Any] = field(default_factory=dict)
    gpu: int | None = None


def ok(reason: str, **measured: Any) -> Judgement:
    return Judgement(Status.PASSED, reason, measured)


def fail(reason: str, **measured: Any) -> Judgement:
    return Judgement(Status.FAILED, reason, measured)


def skip(reason: str, **measured: Any) -> Judgement:
    return Judgement(Status.SKIPPED, reason, measured)


def crashed(exc: Exception) -> Judgement:
    return Judgement(Status.ERROR, f"check crashed: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    severity: Severity
    # Needs the NVIDIA driver: skipped under --cpu-only.
    needs_gpu: bool
    description: str
    function: Callable[..., Judgement | list[Judgement]]

    def result(self, judgement: Judgement, **extra: Any) -> CheckResult:
        return CheckResult(
            self.check_id,
            judgement.status,
            judgement.reason,
            severity=self.severity,
            gpu=judgement.gpu,
            measurements=dict(judgement.measurements),
            **extra,
        )


def check(
    check_id: str,
    *,
    description: str,
    severity: Severity = Severity.REQUIRED,
    needs_gpu: bool = True,
) -> Callable[[Callable], Callable]:
    def declare(function: Callable) -> Callable:
        function.check_spec = CheckSpec(check_id, severity, needs_gpu, description, function)
        return function

    return declare


def collect(modules: Iterable[ModuleType]) -> list[CheckSpec]:
    """The checks declared in `modules`, module by module, each in the order it defines them."""
    return [
        function.check_spec
        for module in modules
        for function in vars(module).values()
        if isinstance(getattr(function, "check_spec", None), CheckSpec)
        and function.__module__ == module.__name__
    ]
