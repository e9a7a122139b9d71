"""DCGM's own diagnostic, when the host has it: `dcgmi diag -r 2` (or 3) with JSON output.

Its JSON has changed shape across DCGM releases (3.x: category → tests → results; 4.x: tests
with per-entity results); both are walked for results whose status is Fail, and the whole
document is kept in the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any


def _failures(node: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        name = node.get("test_name") or node.get("name") or path
        status = str(node.get("status") or node.get("result") or "")
        if status.lower() in ("fail", "failed"):
            info = node.get("warnings") or node.get("info") or ""
            found.append(f"{name}: {json.dumps(info)[:200]}" if info else str(name))
        for key, child in node.items():
            found += _failures(child, str(name or key))
    elif isinstance(node, list):
        for child in node:
            found += _failures(child, path)
    return found


def _tests(node: Any) -> int:
    if isinstance(node, dict):
        own = 1 if ("test_name" in node or "test_summary" in node) else 0
        return own + sum(_tests(child) for child in node.values())
    if isinstance(node, list):
        return sum(_tests(child) for child in node)
    return 0


def run_diag(
    level: int,
    *,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., Any] = subprocess.run,
    timeout_s: float = 3600,
) -> dict[str, Any]:
    """{present, level, result (dcgmi's JSON), failed [...], tests, error}."""
    binary = which("dcgmi")
    if not binary:
        return {"present": False, "level": level}
    try:
        proc = run(
            [binary, "diag", "-r", str(level), "-j"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"present": True, "level": level, "error": f"{type(exc).__name__}: {exc}"}
    try:
        document = json.loads(proc.stdout)
    except ValueError:
        said = (proc.stderr or proc.stdout or "").strip().splitlines()
        return {
            "present": True,
            "level": level,
            "error": f"exit {proc.returncode}, no JSON: {said[-1] if said else 'no output'}",
        }
    return {
        "present": True,
        "level": level,
        "result": document,
        "failed": _failures(document),
        "tests": _tests(document),
        "exit_code": proc.returncode,
    }
