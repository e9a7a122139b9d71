"""The terminal table: one line per result, printed as soon as the check finishes."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from verify.result import CheckResult, Severity, Status

# The measurement a reader looks for first, per kind of check.
KEY_MEASUREMENTS = (
    "tflops",
    "gb_per_s",
    "accuracy",
    "final_loss",
    "train_time_s",
    "temperature_c",
    "width",
    "volatile_uncorrected",
    "found",
    "version",
)
LABELS = {
    Status.PASSED: ("PASS", "32"),
    Status.FAILED: ("FAIL", "31"),
    Status.SKIPPED: ("SKIP", "33"),
    Status.ERROR: ("ERROR", "35"),
}
ID_WIDTH = 28


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def key_measurement(measurements: dict[str, Any]) -> str:
    chosen = [key for key in KEY_MEASUREMENTS if measurements.get(key) is not None][:2]
    return " ".join(f"{key}={_format_number(measurements[key])}" for key in chosen)


class TerminalTable:
    def __init__(self, stream: TextIO = sys.stdout, *, color: bool | None = None) -> None:
        self.stream = stream
        self.color = stream.isatty() if color is None else color

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def header(self, *, host: str, mode: str, framework: str) -> None:
        self._print(f"labrig verify on {host} ({mode}, {framework})")
        self._print(f"{'STATUS':<6} {'CHECK':<{ID_WIDTH}} {'GPU':<6} REASON")

    def note(self, text: str) -> None:
        self._print(text)

    def add(self, item: CheckResult) -> None:
        label, code = LABELS[item.status]
        if item.severity is Severity.ADVISORY and item.status is Status.FAILED:
            label, code = "WARN", "33"
        where = "-" if item.gpu is None else str(item.gpu)
        if item.framework and item.gpu is None:
            where = item.framework.get("device", "cpu")
        measured = key_measurement(item.measurements)
        tail = f"  [{measured}]" if measured else ""
        status = self._paint(f"{label:<6}", code)
        self._print(f"{status} {item.check_id:<{ID_WIDTH}} {where:<6} {item.reason}{tail}")

    def footer(self, summary: dict[str, Any], *, duration_s: float, exit_code: int) -> None:
        counts = ", ".join(f"{summary[s.value]} {s.value}" for s in Status if summary.get(s.value))
        verdict = "OK" if summary["ok"] else "NOT OK"
        colour = "32" if summary["ok"] else "31"
        self._print(
            f"{self._paint(verdict, colour)}: {counts or 'no checks run'} "
            f"in {duration_s:.1f} s (exit {exit_code})"
        )
        first = summary.get("first_failure")
        if first:
            gpu = "" if first["gpu"] is None else f" on GPU {first['gpu']}"
            self._print(f"first failure: {first['check_id']}{gpu}: {first['reason']}")
