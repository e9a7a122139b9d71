"""`python -m verify`: gather -> host checks -> workload checks -> reports -> exit code.

Exit codes: 0 every required check passed (skipped is fine); 1 a required check failed or
errored; 2 bad usage, or the suite itself could not run (unreadable expectations or snapshot,
report not writable, workloads missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from verify import cuda_devices, frameworks, load_sampler, pcie, selection, smi_xml
from verify import expectations as expectations_module
from verify import snapshot as snapshot_module
from verify.burn_in import cli as burn_in_cli
from verify.checks import CATALOGUE, run_host_checks
from verify.checks.common import no_gpu_reason
from verify.outcome import EXIT_OK, EXIT_SUITE_ERROR, RunInfo, exit_code_for, writable_target
from verify.registry import CheckSpec
from verify.report import json_report, junit, prometheus
from verify.report.terminal import TerminalTable
from verify.result import CheckResult, Status
from verify.values import value

WORKLOAD_PREFIX = "workload"
SNAPSHOT_REPLAY_REASON = "--snapshot: workload checks need the live machine, not a recording"
SMI_XML_REASON = "--nvidia-smi-xml: workload checks need the live machine, not a recorded dump"


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
        choices=frameworks.FRAMEWORKS,
        help="framework for the build and workload checks (default: expectations, else mxnet)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the JSON report here")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML here")
    parser.add_argument(
        "--prometheus-textfile",
        metavar="PATH",
        help="write the results as Prometheus metrics here, atomically (node_exporter's textfile "
        "collector reads *.prom)",
    )
    _add_expectation_options(parser)
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
        "--nvidia-smi-xml",
        metavar="FILE",
        help="judge a recorded `nvidia-smi -q -x` dump (driver and GPU checks) instead of this "
        "machine",
    )
    source.add_argument(
        "--record-snapshot",
        metavar="PATH",
        help="also write the gathered snapshot here (and `nvidia-smi -q -x` beside it)",
    )
    parser.add_argument("--host", metavar="NAME", help="host name for the reports")
    parser.add_argument("--list-checks", action="store_true", help="list the check ids and exit")
    parser.add_argument("--no-color", action="store_true", help="plain terminal output")
    # With no command, the options above run the suite; `burn-in` is the sustained-load run.
    commands = parser.add_subparsers(dest="command", metavar="[burn-in]")
    commands.add_parser(
        "burn-in",
        parents=[burn_in_cli.build_parser()],
        add_help=False,
        help="minutes of full load on every GPU (python -m verify burn-in --help)",
        description=burn_in_cli.build_parser().description,
    )
    return parser


def _add_expectation_options(parser: argparse.ArgumentParser) -> None:
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


def workload_checks() -> list[CheckSpec] | None:
    """The workload checks, or None where verify.workloads cannot be imported."""
    try:
        from verify.workloads import CHECKS
    except ImportError:
        return None
    return list(CHECKS)


def list_checks(stream: TextIO) -> None:
    workloads = workload_checks()
    for spec in [*CATALOGUE, *(workloads or ())]:
        scope = "gpu" if spec.needs_gpu else "host"
        print(
            f"{spec.check_id:<28} {spec.severity.value:<9} {scope:<5} {spec.description}",
            file=stream,
        )
    if workloads is None:
        print(
            f"{'workload.*':<28} {'required':<9} {'gpu':<5} verify.workloads missing", file=stream
        )


def unknown_selectors(selectors: list[str], workload_ids: list[str] | None) -> list[str]:
    """Selectors that select nothing. Without the workloads' id list, any `workload*` passes."""
    if workload_ids is None:
        selectors = [s for s in selectors if not s.startswith(WORKLOAD_PREFIX)]
    known = [spec.check_id for spec in CATALOGUE] + [WORKLOAD_PREFIX, *(workload_ids or ())]
    return selection.unknown(selectors, known)


def wants_workloads(
    only: list[str] | None, skip: list[str], workload_ids: list[str] | None
) -> bool:
    """False when --only/--skip rule out every workload check."""
    if workload_ids:
        return any(selection.selected(check_id, only, skip) for check_id in workload_ids)
    if WORKLOAD_PREFIX in skip:
        return False
    return not only or any(selector.startswith(WORKLOAD_PREFIX) for selector in only)


def run_workload_checks(
    snapshot: dict[str, Any],
    expectations: dict[str, Any],
    *,
    framework: str,
    cpu_only: bool,
    replay: str | None,
    only: list[str] | None,
    skip: list[str],
    on_result: Callable[[CheckResult], None],
) -> list[CheckResult]:
    """Hand this machine's GPUs, and the probe the snapshot took, to the workload runner."""
    results: list[CheckResult] = []

    def emit(item: CheckResult) -> None:
        results.append(item)
        on_result(item)

    def keep(item: CheckResult) -> None:
        # The runner is held to the same selection: nothing unasked reaches the report.
        if selection.selected(item.check_id, only, skip):
            emit(item)

    if replay:
        emit(CheckResult(WORKLOAD_PREFIX, Status.SKIPPED, replay))
        return results
    try:
        from verify.workloads.runner import no_gpu_result, run_workloads
    except ImportError as exc:
        raise SuiteError(f"workload checks unavailable: {exc}") from None
    devices = [] if cpu_only else snapshot["nvml"].get("gpus") or []
    try:
        contexts = gpu_contexts(devices) if devices else None
        run_workloads(
            framework=framework,
            gpu_indices=[device["index"] for device in devices],
            cpu_only=cpu_only,
            expectations=expectations,
            only=set(only) if only else None,
            skip=set(skip),
            on_result=keep,
            gpu_names={d["index"]: value(d.get("nvmlDeviceGetName")) for d in devices},
            probe=snapshot.get("framework") or None,
            contexts=contexts,
        )
    except Exception as exc:
        emit(
            CheckResult(
                WORKLOAD_PREFIX,
                Status.ERROR,
                f"workload runner crashed: {type(exc).__name__}: {exc}",
            )
        )
    if not cpu_only and not devices and not results:
        # Whatever the runner does without a GPU, this run must not look clean.
        emit(no_gpu_result(WORKLOAD_PREFIX, no_gpu_reason(snapshot) or "NVML sees no GPU"))
    return results


def gpu_contexts(
    devices: list[dict[str, Any]],
    *,
    list_devices: Callable[[], dict[str, Any]] = cuda_devices.list_cuda_devices,
    sampler_for: Callable[[str], Callable[[], dict[str, Any]]] = load_sampler.for_bus,
    environ: dict[str, str] | None = None,
) -> dict[int, Any]:
    """Each NVML GPU's CUDA device (by bus id / UUID, as CUDA_VISIBLE_DEVICES leaves them), link
    maxima and load sampler, for the workload runner."""
    from verify.workloads.spec import GpuContext

    identities = [cuda_devices.nvml_identity(device) for device in devices]
    targets = cuda_devices.map_gpus(
        identities, list_devices(), cuda_devices.cuda_visible_devices(environ)
    )
    contexts = {}
    for device, identity in zip(devices, identities, strict=True):
        bus_id = identity["pci_bus_id"]
        contexts[device["index"]] = GpuContext(
            target=targets[device["index"]],
            name=identity["name"],
            card=pcie.card_of(device),
            host=pcie.host_of(device),
            sampler=sampler_for(bus_id) if bus_id else None,
        )
    return contexts


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "burn-in":
        return burn_in_cli.run_parsed(args, stdout=stdout)
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


def load_expectations(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {
        "driver_version": args.driver_version,
        "gpu_count": args.gpu_count,
        "gpu_models": args.gpu_model,
        "mlp_samples": args.mlp_samples,
        "framework": args.framework,
    }
    return expectations_module.load(args.expectations_dir, args.expect, overrides)


def replay_reason(args: argparse.Namespace) -> str | None:
    """Why the workloads do not run: the facts are a recording, not this machine."""
    if args.snapshot:
        return SNAPSHOT_REPLAY_REASON
    if args.nvidia_smi_xml:
        return SMI_XML_REASON
    return None


def take_snapshot(args: argparse.Namespace, framework: str, table: TerminalTable) -> dict[str, Any]:
    """The recorded snapshot (--snapshot), else this machine's, recorded when asked."""
    if args.snapshot:
        return snapshot_module.load(args.snapshot)
    if args.nvidia_smi_xml:
        return smi_xml.load(args.nvidia_smi_xml, host=args.host)
    table.note(f"gathering facts: NVML, nvidia-smi, /proc, {framework} build ...")
    snapshot = snapshot_module.gather(framework)
    if args.record_snapshot:
        snapshot_module.save(snapshot, args.record_snapshot)
        record_smi_xml(args.record_snapshot, table)
    return snapshot


def smi_xml_path(snapshot_path: str) -> Path:
    """Where `--record-snapshot ws01.json` keeps nvidia-smi's own view: ws01.nvidia-smi.xml."""
    path = Path(snapshot_path)
    return path.with_name(f"{path.stem}.nvidia-smi.xml")


def record_smi_xml(snapshot_path: str, table: TerminalTable, *, run=None) -> None:
    """Keep `nvidia-smi -q -x` beside the snapshot: `--nvidia-smi-xml` judges it later, and it
    holds what NVML's snapshot does not (inforom, clocks, every reason NVIDIA prints)."""
    xml, why = (run or snapshot_module.run_nvidia_smi_xml)()
    target = smi_xml_path(snapshot_path)
    if xml is None:
        table.note(f"nvidia-smi -q -x not kept beside the snapshot: {why}")
        return
    target.write_text(xml, encoding="utf-8")
    table.note(f"nvidia-smi -q -x kept in {target}")


def write_reports(
    args: argparse.Namespace,
    snapshot: dict[str, Any],
    results: list[CheckResult],
    run: RunInfo,
) -> None:
    if args.json or args.prometheus_textfile:
        report = json_report.build_report(snapshot, results, run)
        if args.json:
            json_report.write(report, args.json)
        if args.prometheus_textfile:
            prometheus.write(report, args.prometheus_textfile)
    if args.junit:
        junit.write(results, args.junit, run, json_report.gpu_inventory(snapshot))


class Phases:
    """Where the run's time went: each phase ends where the next begins."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now

    @property
    def total_s(self) -> float:
        return self.last - self.started


def announce(
    table: TerminalTable,
    args: argparse.Namespace,
    *,
    host: str,
    framework: str,
    probe: dict[str, Any],
    expectations: dict[str, Any],
) -> None:
    mode = "cpu-only" if args.cpu_only else "gpu"
    version = probe.get("version") or "not importable"
    described = f"{framework} {version}"
    if args.nvidia_smi_xml:
        mode, described = f"recorded {smi_xml.SOURCE_KIND}", "framework not recorded"
    table.header(host=host, mode=mode, framework=described)
    if not expectations:
        # Said aloud: with nothing expected, every expected-value check is only skipped.
        table.note(
            f"no expectations in {args.expectations_dir} or --expect/flags: "
            "expected-value checks are skipped"
        )


def validate_outputs(args: argparse.Namespace) -> None:
    for path in (args.json, args.junit, args.prometheus_textfile, args.record_snapshot):
        if path:
            why = writable_target(path)
            if why:
                raise SuiteError(why)


def run(args: argparse.Namespace, stdout: TextIO) -> int:
    workload_ids = [spec.check_id for spec in workload_checks() or ()] or None
    unknown = unknown_selectors([*(args.only or []), *args.skip], workload_ids)
    if unknown:
        raise SuiteError(f"unknown check id or prefix: {', '.join(unknown)} (see --list-checks)")
    # Everything that can make the run unusable is refused before the first check runs.
    validate_outputs(args)
    expectations = load_expectations(args)
    if not replay_reason(args):
        # Before anything initialises CUDA (the framework probe does): CUDA's own order puts
        # the fastest GPU first, NVML's is PCI bus order; the workloads map one to the other.
        os.environ["CUDA_DEVICE_ORDER"] = cuda_devices.DEVICE_ORDER
    framework = expectations.get("framework", frameworks.DEFAULT_FRAMEWORK)

    phases = Phases()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    table = TerminalTable(stdout, color=False if args.no_color else None)
    snapshot = take_snapshot(args, framework, table)
    phases.end("gather_s")
    probe = snapshot.get("framework") or {}
    framework = probe.get("name") or framework
    host = args.host or snapshot.get("host") or "unknown"
    announce(table, args, host=host, framework=framework, probe=probe, expectations=expectations)
    selected = {"only": args.only, "skip": args.skip, "on_result": table.add}
    results = run_host_checks(snapshot, expectations, cpu_only=args.cpu_only, **selected)
    phases.end("host_checks_s")
    if wants_workloads(args.only, args.skip, workload_ids):
        results += run_workload_checks(
            snapshot,
            expectations,
            framework=framework,
            cpu_only=args.cpu_only,
            replay=replay_reason(args),
            **selected,
        )
    phases.end("workloads_s")
    code = exit_code_for(results)
    run_info = RunInfo(
        host=host,
        started=started,
        duration_s=phases.total_s,
        exit_code=code,
        cpu_only=args.cpu_only,
        phases=phases.seconds,
    )
    write_reports(args, snapshot, results, run_info)
    table.footer(json_report.summarise(results), duration_s=phases.total_s, exit_code=code)
    return code
