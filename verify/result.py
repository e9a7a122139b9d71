"""The result model every check produces and every report consumes.

This is the contract between `verify.checks`, `verify.workloads`, the per-host reports
(`verify.report`) and the fleet report (`verify.fleet`). Keep it small and JSON-friendly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
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
        # Field by field, not dataclasses.asdict: its deep copy made merging 20k checks 10x slower.
        return {
            "check_id": self.check_id,
            "status": self.status.value,
            "reason": self.reason,
            "severity": self.severity.value,
            "gpu": self.gpu,
            "measurements": self.measurements,
            "duration_s": self.duration_s,
            "framework": self.framework,
        }

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


def count_statuses(results: Iterable[CheckResult]) -> dict[str, int]:
    """{"passed": n, "failed": n, "skipped": n, "error": n}, every status present."""
    counts = {status.value: 0 for status in Status}
    for item in results:
        counts[item.status.value] += 1
    return counts
