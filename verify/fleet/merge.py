"""The fleet's data model: read a run folder of per-host reports and build the fleet document
every view (summary, fleet.junit.xml, fleet.html, diff) renders. Writing files is the fleet
command line's business (verify/fleet/__main__.py).

A run folder holds `<host>.json` per host (CONTRACTS.md section 2, or the stand-in the verify
playbook writes for a host where the suite could not run) and, once merged, `fleet.json`,
`fleet.junit.xml` and `fleet.html`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from verify.fleet.compare import compare_fleet
from verify.fleet.ingest import read_report
from verify.result import CheckResult, Status, count_statuses

FLEET_SCHEMA = "labrig.fleet/1"
MERGED_NAMES = ("fleet.json", "fleet.junit.xml", "fleet.html")
# `python -m verify burn-in`'s report beside a host's verify report: `<host>.burn-in.json`.
BURN_IN_SUFFIX = ".burn-in.json"

HOST_OK = "ok"
HOST_FAILED = "failed"
HOST_UNREACHABLE = "unreachable"
HOST_SUITE_ERROR = "suite_error"
HOST_STATES = (HOST_OK, HOST_FAILED, HOST_UNREACHABLE, HOST_SUITE_ERROR)

_NOT_PASSING = (Status.FAILED, Status.ERROR)


def natural_key(text: str) -> list[Any]:
    """Sort node2 before node10, as a lab admin reads host names."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def read_host_report(path: Path) -> dict[str, Any]:
    """One host's report, named after its file (the controller names it by the inventory), read
    as hostile input (verify/fleet/ingest.py): a bad one becomes that host's suite error."""
    host = path.name.removesuffix(BURN_IN_SUFFIX).removesuffix(".json")
    return read_report(path, host)


def host_report_paths(run_dir: Path) -> list[Path]:
    """Each host's report: its verify report, else (a host only burned in) its burn-in's."""
    paths = {
        p.name.removesuffix(".json"): p
        for p in run_dir.glob("*.json")
        if p.name not in MERGED_NAMES and not p.name.endswith(BURN_IN_SUFFIX)
    }
    for path in run_dir.glob(f"*{BURN_IN_SUFFIX}"):
        paths.setdefault(path.name.removesuffix(BURN_IN_SUFFIX), path)
    return sorted(paths.values(), key=lambda p: natural_key(p.name))


def with_burn_in(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """A host's verify report with its burn-in beside it: the burn-in's checks join the host's
    (so its state, the grid and the RMA table count them) and `burn_in` summarises the run."""
    from verify.burn_in.report import burn_in_summary

    if path.name.endswith(BURN_IN_SUFFIX):
        burn_in = report
        host = path.name.removesuffix(BURN_IN_SUFFIX)
    else:
        host = path.name.removesuffix(".json")
        burn_path = path.with_name(f"{host}{BURN_IN_SUFFIX}")
        if not burn_path.exists():
            return report
        burn_in = read_host_report(burn_path)
        report = dict(report)
        report["checks"] = [*(report.get("checks") or []), *(burn_in.get("checks") or [])]
        report["exit_code"] = max(report.get("exit_code") or 0, burn_in.get("exit_code") or 0)
    report["burn_in"] = burn_in_summary(burn_in)
    return report


def first_failure(checks: list[CheckResult]) -> CheckResult | None:
    """The check a reader should look at first: a blocking one, else an advisory failure."""
    for check in checks:
        if check.blocking:
            return check
    for check in checks:
        if check.status in _NOT_PASSING:
            return check
    return None


def host_state(report: dict[str, Any]) -> tuple[str, str]:
    """(state, one-line reason) of a host from its report."""
    if report.get("unreachable"):
        return HOST_UNREACHABLE, str(report.get("suite_error") or "host did not answer")
    if report.get("suite_error"):
        return HOST_SUITE_ERROR, str(report["suite_error"])
    checks = [CheckResult.from_dict(c) for c in report.get("checks") or []]
    failure = first_failure([c for c in checks if c.blocking])
    if failure is not None:
        where = f" gpu{failure.gpu}" if failure.gpu is not None else ""
        return HOST_FAILED, f"{failure.check_id}{where}: {failure.reason}"
    exit_code = report.get("exit_code", 0)
    if exit_code not in (0, None):
        # The suite said it failed but no check explains why: never report that host as ok.
        return HOST_SUITE_ERROR, f"suite exited {exit_code} without a failing check"
    if not checks:
        return HOST_SUITE_ERROR, "report has no checks"
    return HOST_OK, "all required checks passed"


def host_model(host: dict[str, Any]) -> str:
    """ "2x NVIDIA GeForce RTX 3090", "no GPU" for a verified host without one, "" when unknown."""
    names = [g.get("name") or "?" for g in host.get("gpus") or []]
    if not names:
        return "no GPU" if host.get("state") in (HOST_OK, HOST_FAILED) else ""
    distinct = sorted(set(names))
    return f"{len(names)}x {distinct[0]}" if len(distinct) == 1 else f"{len(names)} GPUs, mixed"


@dataclass
class SubjectRow:
    """The checks of one subject: a host's own checks (gpu None) or one of its GPUs."""

    host: str
    gpu: int | None
    gpu_name: str | None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.host if self.gpu is None else f"{self.host}.gpu{self.gpu}"

    @property
    def counts(self) -> dict[str, int]:
        return count_statuses(self.checks)

    @property
    def first_failure(self) -> CheckResult | None:
        return first_failure(self.checks)

    @property
    def ok(self) -> bool:
        return not any(c.blocking for c in self.checks)

    def measurement(self, check_id: str, key: str) -> Any:
        for check in self.checks:
            if check.check_id == check_id and key in check.measurements:
                return check.measurements[key]
        return None


def subject_rows(report: dict[str, Any]) -> list[SubjectRow]:
    """Host row first, then one row per GPU, in index order."""
    host = report["host"]
    names = {g.get("index"): g.get("name") for g in report.get("gpus") or []}
    host_row = SubjectRow(host, None, None)
    gpu_rows: dict[int, SubjectRow] = {
        index: SubjectRow(host, index, name) for index, name in names.items() if index is not None
    }
    for raw in report.get("checks") or []:
        check = CheckResult.from_dict(raw)
        if check.gpu is None:
            host_row.checks.append(check)
        else:
            row = gpu_rows.setdefault(check.gpu, SubjectRow(host, check.gpu, None))
            row.checks.append(check)
    return [host_row, *(gpu_rows[i] for i in sorted(gpu_rows))]


def _host_entry(report: dict[str, Any]) -> dict[str, Any]:
    state, reason = host_state(report)
    checks = [CheckResult.from_dict(c) for c in report.get("checks") or []]
    return {
        "host": report["host"],
        "state": state,
        "reason": reason,
        "started": report.get("started"),
        "duration_s": report.get("duration_s"),
        "labrig_version": report.get("labrig_version"),
        "mode": report.get("mode"),
        "framework": report.get("framework"),
        "versions": report.get("versions") or {},
        "gpus": report.get("gpus") or [],
        "exit_code": report.get("exit_code"),
        "unreachable": bool(report.get("unreachable")),
        "suite_error": report.get("suite_error"),
        # The name the report gave itself, where it is not the inventory's (a warning).
        **({"claimed_host": report["claimed_host"]} if report.get("claimed_host") else {}),
        "counts": count_statuses(checks),
        "checks": [c.to_dict() for c in checks],
        **({"burn_in": report["burn_in"]} if report.get("burn_in") else {}),
    }


def fleet_totals(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    states = {state: 0 for state in HOST_STATES}
    checks = {status.value: 0 for status in Status}
    gpus = failing_gpus = 0
    for entry in hosts:
        states[entry["state"]] += 1
        for status, n in entry["counts"].items():
            checks[status] += n
        for row in subject_rows(entry):
            if row.gpu is not None:
                gpus += 1
                failing_gpus += 0 if row.ok else 1
    return {
        "hosts": len(hosts),
        "states": states,
        "gpus": gpus,
        "failing_gpus": failing_gpus,
        "checks": checks,
        "ok": bool(hosts) and states[HOST_OK] == len(hosts),
    }


_RUN_ID_TIME = re.compile(r"(\d{8}T\d{6}Z)")


def run_time(run_id: str, hosts: list[dict[str, Any]]) -> str | None:
    """When the run happened: the time in its id (the playbook names runs after it), else the
    earliest host start. Re-rendering a run later must not move it."""
    match = _RUN_ID_TIME.search(run_id)
    if match:
        moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        return moment.isoformat(timespec="seconds")
    started = sorted(str(h["started"]) for h in hosts if h.get("started"))
    return started[0] if started else None


def rma_candidates(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every GPU with a blocking failure, as a lab files it with the vendor: which card (serial,
    UUID, bus id, VBIOS, driver) and why (the first failing check)."""
    found = []
    for host in hosts:
        inventory = {g.get("index"): g for g in host.get("gpus") or []}
        for row in subject_rows(host):
            if row.gpu is None or row.ok:
                continue
            failure = first_failure([c for c in row.checks if c.blocking])
            gpu = inventory.get(row.gpu, {})
            found.append(
                {
                    "host": host["host"],
                    "gpu": row.gpu,
                    "name": gpu.get("name") or row.gpu_name,
                    "serial": gpu.get("serial"),
                    "uuid": gpu.get("uuid"),
                    "pci_bus_id": gpu.get("pci_bus_id"),
                    "vbios": gpu.get("vbios"),
                    "driver": gpu.get("driver") or (host.get("versions") or {}).get("driver"),
                    "check_id": failure.check_id if failure else None,
                    "reason": failure.reason if failure else None,
                }
            )
    return found


def suspect_hosts(hosts: list[dict[str, Any]], comparison: dict[str, Any]) -> list[dict[str, str]]:
    """Hosts whose reports look forged: refused on ingest, claiming another host's name, or
    claiming measurements no card of their model reaches. Named, never taken as references."""
    implausible = set(comparison.get("suspects") or [])
    found = []
    for host in hosts:
        why = []
        if str(host.get("suite_error") or "").startswith("report refused"):
            why.append(str(host["suite_error"]))
        if host.get("claimed_host"):
            why.append(f"its report claims to be {host['claimed_host']}")
        if host["host"] in implausible:
            why.append("it claims measurements no card of its model reaches")
        if why:
            found.append({"host": host["host"], "why": "; ".join(why)})
    return found


def build_fleet(run_dir: Path, *, flag_below: float = 0.8) -> dict[str, Any]:
    """The fleet document (written as fleet.json, embedded in fleet.html)."""
    run_dir = Path(run_dir)
    paths = host_report_paths(run_dir)
    if not paths:
        raise FileNotFoundError(f"no host reports (*.json) in {run_dir}")
    hosts = [_host_entry(with_burn_in(read_host_report(p), p)) for p in paths]
    run_id = run_dir.resolve().name
    rendered = datetime.now(timezone.utc).isoformat(timespec="seconds")
    comparison = compare_fleet(hosts, flag_below=flag_below)
    return {
        "schema": FLEET_SCHEMA,
        "run_id": run_id,
        # The run's time, the same however often it is re-rendered; `rendered` is this rendering.
        "generated": run_time(run_id, hosts) or rendered,
        "rendered": rendered,
        "totals": fleet_totals(hosts),
        "comparison": comparison,
        "suspects": suspect_hosts(hosts, comparison),
        "rma": rma_candidates(hosts),
        "hosts": hosts,
    }
