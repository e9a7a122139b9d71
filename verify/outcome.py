"""What a run of the suite ends with, shared by `python -m verify` and its burn-in: the exit codes,
the code for a set of results, and the check, before any work, that a report can be written."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from verify.result import CheckResult

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_SUITE_ERROR = 2


@dataclass(frozen=True)
class RunInfo:
    """Which run a report is of: the host it judged, when it started (ISO 8601), how long it took,
    how it ended, whether the GPU was left out, and where the time went."""

    host: str
    started: str
    duration_s: float
    exit_code: int
    cpu_only: bool = False
    phases: Mapping[str, float] = field(default_factory=dict)


def exit_code_for(results: list[CheckResult]) -> int:
    return EXIT_CHECK_FAILED if any(item.blocking for item in results) else EXIT_OK


def writable_target(path: str) -> str | None:
    """Why a report could not be written at `path`, or None: asked before any check runs, so
    a long run never ends without its report."""
    target = Path(path)
    if target.is_dir():
        return f"{path}: is a directory"
    if target.exists():
        return None if os.access(target, os.W_OK) else f"{path}: Permission denied"
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return f"{path}: No such file or directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path}: Permission denied"
    return None
