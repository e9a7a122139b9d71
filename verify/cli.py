"""`python -m verify`: gather -> host checks -> workload checks -> reports -> exit code.

Exit codes: 0 every required check passed (skipped is fine); 1 a required check failed or
errored; 2 bad usage, or the suite itself could not run (unreadable expectations or snapshot,
report not writable, workloads missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from verify import expectations as expectations_module
from verify import snapshot as snapshot_module
from verify.checks import CATALOGUE, run_host_checks, selected, unknown_selectors
from verify.checks.common import nvml_unavailable
from verify.report import json_report, junit
from verify.report.terminal import TerminalTable
from verify.result import CheckResult, Status

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_SUITE_ERROR = 2

SNAPSHOT_REPLAY_REASON = "--snapshot: workload checks need the live machine, not a recording"


class SuiteError(Exception):
    """The suite could not run; the message is the one line the user sees."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m verify",
        description="Prove that this workstation does deep learning on its GPUs, as provisioned.",
        epilog="Exit 0: every required check passed. 1: a required check failed. "
        "2: bad usage, or the suite could not run.",
    )
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="run the framework checks on the CPU and skip the GPU checks",
    )
    parser.add_argument(
        "--framework",
        choices=expectations_module.FRAMEWORKS,
        help="framework for the build and workload checks (default: expectations, else mxnet)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the JSON report here")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML here")
    parser.add_argument(
        "--expect",
        metavar="FILE",
        action="append",
        default=[],
        type=Path,
        help="extra expectations YAML (repeatable; later files win)",
    )
    parser.add_argument(
        "--expectations-dir",
        metavar="DIR",
        type=Path,
        default=expectations_module.DEFAULT_DIR,
        help="directory of *.yml expectations merged in lexical order (default: %(default)s)",
    )
    parser.add_argument("--driver-version", metavar="V", help="expected NVIDIA driver version")
    parser.add_argument("--gpu-count", metavar="N", type=int, help="expected number of GPUs")
    parser.add_argument(
        "--gpu-model",
        metavar="NAME",
        nargs="+",
        action="extend",
        help="accepted GPU model name(s), exactly as NVML reports them",
    )
    parser.add_argument(
        "--mlp-samples",
        metavar="N",
        type=int,
        help="uniform draws for the MLP check's data (the seed's sample_density; 50 → 41 points)",
    )
    parser.add_argument(
        "--only", metavar="ID", nargs="+", action="extend", help="run only these ids or prefixes"
    )
    parser.add_argument(
        "--skip", metavar="ID", nargs="+", action="extend", default=[], help="skip ids or prefixes"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--snapshot", metavar="PATH", help="check a recorded snapshot instead of this machine"
    )
    source.add_argument(
        "--record-snapshot", metavar="PATH", help="also write the gathered snapshot here"
    )
    parser.add_argument("--host", metavar="NAME", help="host name for the reports")
    parser.add_argument("--list-checks", action="store_true", help="list the check ids and exit")
    parser.add_argument("--no-color", action="store_true", help="plain terminal output")
    return parser


def workload_check_ids() -> tuple[str, ...] | None:
    """The workload ids, or None where verify.workloads cannot be imported."""
    try:
        from verify.workloads import CHECK_IDS
    except ImportError:
        return None
    return tuple(CHECK_IDS)


def list_checks(stream: TextIO) -> None:
    for spec in CATALOGUE:
        scope = "gpu" if spec.needs_gpu else "host"
        print(
            f"{spec.check_id:<28} {spec.severity.value:<9} {scope:<5} {spec.description}",
            file=stream,
        )
    for check_id in workload_check_ids() or ("workload.*",):
        print(
            f"{check_id:<28} {'required':<9} {'gpu':<5} run on every GPU (verify.workloads)",
            file=stream,
        )


def exit_code_for(results: list[CheckResult]) -> int:
    return EXIT_CHECK_FAILED if any(item.blocking for item in results) else EXIT_OK


def wants_workloads(
    only: list[str] | None, skip: list[str], workload_ids: tuple[str, ...] | None
) -> bool:
    """False when --only/--skip rule out every workload check."""
    if workload_ids:
        return any(selected(check_id, only, skip) for check_id in workload_ids)
    if "workload" in skip:
        return False
    return not only or any(selector.startswith("workload") for selector in only)


def run_workload_checks(
    snapshot: dict[str, Any],
    expectations: dict[str, Any],
    *,
    framework: str,
    cpu_only: bool,
    replay: bool,
    only: list[str] | None,
    skip: list[str],
    on_result: Callable[[CheckResult], None],
) -> list[CheckResult]:
    if replay:
        item = CheckResult("workload", Status.SKIPPED, SNAPSHOT_REPLAY_REASON)
        on_result(item)
        return [item]
    devices = [] if cpu_only else snapshot["nvml"].get("gpus") or []
    gpu_indices = [device["index"] for device in devices]
    gpu_names = {
        device["index"]: device.get("nvmlDeviceGetName", {}).get("value") for device in devices
    }
    try:
        from verify.workloads import run_workloads
    except ImportError as exc:
        raise SuiteError(f"workload checks unavailable: {exc}") from None

    results: list[CheckResult] = []

    def keep(item: CheckResult) -> None:
        if selected(item.check_id, only, skip):
            results.append(item)
            on_result(item)

    try:
        run_workloads(
            framework=framework,
            gpu_indices=gpu_indices,
            cpu_only=cpu_only,
            expectations=expectations,
            only=set(only) if only else None,
            skip=set(skip),
            on_result=keep,
            gpu_names=gpu_names,
        )
    except Exception as exc:
        item = CheckResult(
            "workload", Status.ERROR, f"workload runner crashed: {type(exc).__name__}: {exc}"
        )
        results.append(item)
        on_result(item)
    if not cpu_only and not gpu_indices and not results:
        # Whatever the runner does without a GPU, this run must not look clean.
        why = nvml_unavailable(snapshot) or "NVML sees no GPU"
        item = CheckResult(
            "workload", Status.FAILED, f"no GPU to run the workload checks on: {why}"
        )
        results.append(item)
        on_result(item)
    return results


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_checks:
        list_checks(stdout)
        return EXIT_OK
    try:
        return run(args, stdout)
    except (
        SuiteError,
        expectations_module.ExpectationsError,
        snapshot_module.SnapshotError,
    ) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return EXIT_SUITE_ERROR
    except OSError as exc:
        print(f"verify: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_SUITE_ERROR


def run(args: argparse.Namespace, stdout: TextIO) -> int:
    selectors = [*(args.only or []), *args.skip]
    workload_ids = workload_check_ids()
    unknown = unknown_selectors(selectors, workload_ids)
    if unknown:
        raise SuiteError(f"unknown check id or prefix: {', '.join(unknown)} (see --list-checks)")
    overrides = {
        "driver_version": args.driver_version,
        "gpu_count": args.gpu_count,
        "gpu_models": args.gpu_model,
        "mlp_samples": args.mlp_samples,
        "framework": args.framework,
    }
    expectations = expectations_module.load(args.expectations_dir, args.expect, overrides)
    framework = expectations.get("framework", "mxnet")

    started_at = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    table = TerminalTable(stdout, color=False if args.no_color else None)
    if args.snapshot:
        snapshot = snapshot_module.load(args.snapshot)
        framework = (snapshot.get("framework") or {}).get("name") or framework
    else:
        table.note(f"gathering facts: NVML, nvidia-smi, /proc, {framework} build ...")
        snapshot = snapshot_module.gather(framework)
        if args.record_snapshot:
            snapshot_module.save(snapshot, args.record_snapshot)
    gathered_at = time.perf_counter()
    host = args.host or snapshot.get("host") or "unknown"
    mode = "cpu-only" if args.cpu_only else "gpu"
    version = (snapshot.get("framework") or {}).get("version") or "not importable"

    table.header(host=host, mode=mode, framework=f"{framework} {version}")
    if not expectations:
        # Said aloud: with nothing expected, every expected-value check is only skipped.
        table.note(
            f"no expectations in {args.expectations_dir} or --expect/flags: "
            "expected-value checks are skipped"
        )
    results = run_host_checks(
        snapshot,
        expectations,
        cpu_only=args.cpu_only,
        only=args.only,
        skip=args.skip,
        on_result=table.add,
    )
    checked_at = time.perf_counter()
    if wants_workloads(args.only, args.skip, workload_ids):
        results += run_workload_checks(
            snapshot,
            expectations,
            framework=framework,
            cpu_only=args.cpu_only,
            replay=bool(args.snapshot),
            only=args.only,
            skip=args.skip,
            on_result=table.add,
        )
    finished_at = time.perf_counter()
    phases = {
        "gather_s": round(gathered_at - started_at, 3),
        "host_checks_s": round(checked_at - gathered_at, 3),
        "workloads_s": round(finished_at - checked_at, 3),
    }
    duration = time.perf_counter() - started_at
    code = exit_code_for(results)
    if args.json:
        report = json_report.build_report(
            snapshot,
            results,
            host=host,
            started=started,
            duration_s=duration,
            cpu_only=args.cpu_only,
            exit_code=code,
            phases=phases,
        )
        json_report.write(report, args.json)
    if args.junit:
        junit.write(results, args.junit, host=host, started=started, duration_s=duration)
    table.footer(json_report.summarise(results), duration_s=duration, exit_code=code)
    return code
