"""The result model every check produces and every report consumes.

This is the contract between `verify.checks`, `verify.workloads`, the per-host reports and the
fleet report (`verify.report.fleet`). Keep it small and JSON-friendly.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_SCHEMA = "labrig.verify/1"


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    # The check itself crashed: counted like a failure for required checks.
    ERROR = "error"


class Severity(str, enum.Enum):
    # A required check that does not pass makes the suite exit 1.
    REQUIRED = "required"
    # An advisory check is reported but never changes the exit code.
    ADVISORY = "advisory"


@dataclass(frozen=True)
class CheckResult:
    """One check on one subject (the host, or one GPU when `gpu` is set)."""

    check_id: str
    status: Status
    reason: str
    severity: Severity = Severity.REQUIRED
    gpu: int | None = None
    measurements: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    # {"name": "mxnet", "version": "1.9.1", "device": "gpu(0)"} for workload checks.
    framework: dict[str, str] | None = None

    @property
    def blocking(self) -> bool:
        """True when this result alone makes the suite fail."""
        return self.severity is Severity.REQUIRED and self.status in (Status.FAILED, Status.ERROR)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["severity"] = self.severity.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            check_id=data["check_id"],
            status=Status(data["status"]),
            reason=data["reason"],
            severity=Severity(data.get("severity", "required")),
            gpu=data.get("gpu"),
            measurements=dict(data.get("measurements") or {}),
            duration_s=float(data.get("duration_s", 0.0)),
            framework=data.get("framework"),
        )


def passed(check_id: str, reason: str, **kwargs: Any) -> CheckResult:
    return CheckResult(check_id, Status.PASSED, reason, **kwargs)


def failed(check_id: str, reason: str, **kwargs: Any) -> CheckResult:
    return CheckResult(check_id, Status.FAILED, reason, **kwargs)


def skipped(check_id: str, reason: str, **kwargs: Any) -> CheckResult:
    return CheckResult(check_id, Status.SKIPPED, reason, **kwargs)
