"""Reading a host's report on the controller: everything a host sends back is hostile input.

A report is read only when it is small enough, JSON with finite numbers only (no NaN or
Infinity, which fleet.html's JSON.parse would refuse), shallow enough, and of the contract's types
(CONTRACTS.md section 2); control characters (terminal escapes, what XML 1.0 cannot hold) are
removed from every string. A report that fails any of it becomes that host's suite error, named
after the rule it broke, never a crash of the merge. The host is always the name the controller
gave the file (the inventory's); a different name claimed inside is kept as a warning.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 12
# C0 controls but tab and newline, DEL, and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STATUSES = ("passed", "failed", "skipped", "error")


class BadReport(ValueError):
    """A report that breaks a rule of ingestion; its message names the rule."""


def clean_text(text: str) -> str:
    """The text without control characters (tab and newline kept)."""
    return _CONTROL.sub("", text)


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise BadReport(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise BadReport(f"{value} is not a finite number")
    if isinstance(value, list):
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(key)): _clean(item, depth + 1) for key, item in value.items()}
    return value


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise BadReport(what)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_shape(report: dict[str, Any]) -> None:
    """The types the merge, the page and the comparison rely on; raises BadReport."""
    for key in ("host", "started", "suite_error", "labrig_version", "mode"):
        _expect(report.get(key) is None or isinstance(report[key], str), f"{key} is not text")
    _expect(
        report.get("exit_code") is None or _is_int(report["exit_code"]),
        "exit_code is not an integer",
    )
    _expect(
        report.get("duration_s") is None or _is_number(report["duration_s"]),
        "duration_s is not a number",
    )
    _expect(isinstance(report.get("versions") or {}, dict), "versions is not an object")
    _expect(
        report.get("framework") is None or isinstance(report["framework"], dict | str),
        "framework is not an object",
    )
    gpus = report.get("gpus") or []
    _expect(isinstance(gpus, list), "gpus is not a list")
    for gpu in gpus:
        _expect(isinstance(gpu, dict), "a gpus entry is not an object")
        _expect(_is_int(gpu.get("index")) and gpu["index"] >= 0, "a GPU index is not an integer")
        for key in ("name", "uuid", "serial", "pci_bus_id", "vbios", "driver"):
            _expect(gpu.get(key) is None or isinstance(gpu[key], str), f"gpu {key} is not text")
    checks = report.get("checks") or []
    _expect(isinstance(checks, list), "checks is not a list")
    for check in checks:
        _expect(isinstance(check, dict), "a check is not an object")
        _expect(isinstance(check.get("check_id"), str), "a check_id is not text")
        _expect(
            check.get("status") in _STATUSES, "a check status is not one of " + "/".join(_STATUSES)
        )
        _expect(isinstance(check.get("reason"), str), "a check reason is not text")
        _expect(
            check.get("gpu") is None or _is_int(check["gpu"]), "a check's gpu is not an integer"
        )
        _expect(
            isinstance(check.get("measurements") or {}, dict),
            "a check's measurements is not an object",
        )
        _expect(
            check.get("duration_s") is None or _is_number(check["duration_s"]),
            "a check's duration_s is not a number",
        )


def _suite_error(host: str, why: str, claimed: Any = None) -> dict[str, Any]:
    error = {"host": host, "checks": [], "exit_code": 2, "suite_error": clean_text(why)[:300]}
    if isinstance(claimed, str) and claimed and claimed != host:
        error["claimed_host"] = clean_text(claimed)[:100]
    return error


def read_report(path: Path, host: str) -> dict[str, Any]:
    """The report of `host` (the controller's name for it) at `path`, or its suite error."""
    claimed = None
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise BadReport(f"{size} bytes, more than the {MAX_REPORT_BYTES} a report may have")
        try:
            raw = json.loads(path.read_bytes())
        except RecursionError as exc:
            raise BadReport(f"nested deeper than {MAX_DEPTH} levels") from exc
        _expect(isinstance(raw, dict), "the top level is not an object")
        claimed = raw.get("host")
        report = _clean(raw)
        check_shape(report)
    except BadReport as exc:
        return _suite_error(host, f"report refused: {exc}", claimed)
    except (OSError, ValueError) as exc:
        return _suite_error(host, f"unreadable: {exc}")
    claimed = report.get("host")
    report["host"] = host
    if claimed and claimed != host:
        report["claimed_host"] = claimed[:100]
    return report
