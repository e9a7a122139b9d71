"""`python -m verify burn-in --minutes N [--cpu-only] [--json F] [--html F]`.

Exit codes as the suite's: 0 every required verdict passed, 1 one failed (a run that was
stopped early fails `burnin.run`), 2 bad usage or the burn-in could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from verify import cuda_devices, frameworks
from verify import expectations as expectations_module
from verify import snapshot as snapshot_module
from verify.burn_in import plots
from verify.burn_in.report import build_burn_in_report
from verify.burn_in.run import Options, execute
from verify.burn_in.verdicts import judge
from verify.outcome import EXIT_SUITE_ERROR, RunInfo, exit_code_for, writable_target
from verify.report import json_report
from verify.report.terminal import TerminalTable


def positive_minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not minutes > 0 or minutes != minutes or minutes == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: give a positive number of minutes")
    return minutes


def injection(text: str) -> dict[str, Any]:
    """'gemm=3,memory' → {"gemm": 3, "memory": True}: faults for the tests to prove verdicts."""
    found: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        name, _, number = part.partition("=")
        found[name] = int(number) if number else True
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m verify burn-in",
        description="Minutes of full load on every GPU at once: silent-corruption checks, a "
        "memory test, host-device copies, and the card's health sampled throughout.",
    )
    parser.add_argument("--minutes", type=positive_minutes, required=True, help="how long (0.5 ok)")
    parser.add_argument("--cpu-only", action="store_true", help="one CPU device, small sizes")
    parser.add_argument("--framework", choices=frameworks.FRAMEWORKS, help="default: expectations")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report (with series) here")
    parser.add_argument("--html", metavar="PATH", help="write per-GPU plots (inline SVG) here")
    parser.add_argument("--host", metavar="NAME", help="host name for the reports")
    parser.add_argument(
        "--dcgm-level",
        type=int,
        choices=(2, 3),
        default=int(os.environ.get("DCGM_LEVEL") or 2),
        help="dcgmi diag -r LEVEL when dcgmi is installed (default 2, or $DCGM_LEVEL)",
    )
    parser.add_argument(
        "--size", type=int, help="GEMM size n (default 8192 on a GPU, 256 on a CPU)"
    )
    parser.add_argument("--check-every", type=int, help="compare the result every K iterations")
    parser.add_argument("--memory-mib", type=int, help="memory test size (default: 80%% of free)")
    parser.add_argument("--sample-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--inject", type=injection, default={}, help=argparse.SUPPRESS)
    parser.add_argument(
        "--expectations-dir",
        type=Path,
        default=expectations_module.DEFAULT_DIR,
        help="where the framework is read from (default: %(default)s)",
    )
    parser.add_argument("--no-color", action="store_true", help="plain terminal output")
    return parser


class QuietStream:
    """A terminal that may vanish (SSH lost): output is best effort, the report is what counts."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except (OSError, ValueError):
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (OSError, ValueError):
            return False


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None) -> int:
    return run_parsed(build_parser().parse_args(argv), stdout=stdout)


def run_parsed(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    """The burn-in for arguments parsed by build_parser (or by `python -m verify burn-in`)."""
    for path in (args.json, args.html):
        why = path and writable_target(path)
        if why:
            print(f"verify burn-in: {why}", file=sys.stderr)
            return EXIT_SUITE_ERROR
    try:
        expectations = expectations_module.load(
            args.expectations_dir, [], {"framework": args.framework}
        )
    except expectations_module.ExpectationsError as exc:
        print(f"verify burn-in: {exc}", file=sys.stderr)
        return EXIT_SUITE_ERROR
    framework = expectations.get("framework", frameworks.DEFAULT_FRAMEWORK)
    os.environ["CUDA_DEVICE_ORDER"] = cuda_devices.DEVICE_ORDER
    table = TerminalTable(QuietStream(stdout or sys.stdout), color=False if args.no_color else None)
    began = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    table.note(f"gathering facts: NVML, {framework} build ...")
    snapshot = snapshot_module.gather(framework)
    host = args.host or snapshot.get("host") or "unknown"
    probe = snapshot.get("framework") or {}
    mode = "burn-in cpu-only" if args.cpu_only else "burn-in"
    table.header(host=host, mode=mode, framework=f"{framework} {probe.get('version') or '?'}")
    options = Options(
        minutes=args.minutes,
        framework=framework,
        cpu_only=args.cpu_only,
        size=args.size,
        check_every=args.check_every,
        memory_bytes=args.memory_mib * 2**20 if args.memory_mib else None,
        dcgm_level=args.dcgm_level,
        sample_interval_s=args.sample_interval,
        inject=args.inject,
    )
    outcome = execute(snapshot, options, note=table.note)
    results = judge(outcome.run, outcome.records, outcome.dcgm)
    for item in results:
        table.add(item)
    code = exit_code_for(results)
    duration = time.perf_counter() - began
    run = RunInfo(
        host=host, started=started, duration_s=duration, exit_code=code, cpu_only=args.cpu_only
    )
    report = build_burn_in_report(snapshot, results, outcome, run)
    if args.json:
        json_report.write(report, args.json)
    if args.html:
        Path(args.html).write_text(plots.render_page(report), encoding="utf-8")
    table.footer(json_report.summarise(results), duration_s=duration, exit_code=code)
    return code
