"""Wall time of the verify suite on this machine in --cpu-only mode, whole and per check.

Runs `python -m verify --cpu-only --json` as a user would (a fresh interpreter, so imports count),
twice: the whole suite, and the quick path without the MLP (`--skip workload.mlp`). Prints the
process wall time, the suite's own duration_s and each check's duration_s from the JSON report.
Prints numbers only; nothing is asserted. Targets: the quick path under 5 s, the whole suite
under 15 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verify.frameworks import DEFAULT_FRAMEWORK, FRAMEWORKS

REPO = Path(__file__).resolve().parents[1]


def run_suite(label: str, extra: list[str], framework: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "verify",
            "--cpu-only",
            "--no-color",
            "--framework",
            framework,
            "--expectations-dir",
            scratch,
            "--json",
            str(report_path),
            *extra,
        ]
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        print(f"== {label}: {' '.join(argv[1:])}")
        if not report_path.exists():
            print(f"   no report (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            return
        report = json.loads(report_path.read_text(encoding="utf-8"))
    summary = report["summary"]
    print(
        f"   process wall {wall:.2f} s, suite duration_s {report['duration_s']:.2f} s, "
        f"exit {report['exit_code']} ({summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped, {summary['error']} error)"
    )
    phases = report.get("phases") or {}
    if phases:
        print("   phases: " + ", ".join(f"{name} {value:.2f} s" for name, value in phases.items()))
    timed = [check for check in report["checks"] if check["status"] != "skipped"]
    for check in sorted(timed, key=lambda check: -check["duration_s"]):
        where = "" if check["gpu"] is None else f" gpu{check['gpu']}"
        print(f"   {check['duration_s']:8.3f} s  {check['status']:<7} {check['check_id']}{where}")
    skipped = len(report["checks"]) - len(timed)
    print(f"   ({skipped} skipped checks not listed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default=DEFAULT_FRAMEWORK, choices=FRAMEWORKS)
    args = parser.parse_args()
    run_suite("whole suite", [], args.framework)
    run_suite("quick path (no MLP)", ["--skip", "workload.mlp"], args.framework)


if __name__ == "__main__":
    main()
