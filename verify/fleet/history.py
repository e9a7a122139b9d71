"""Past runs: find them under the reports folder, and diff two of them check by check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.fleet.merge import (
    FLEET_SCHEMA,
    HOST_OK,
    build_fleet,
    host_report_paths,
    natural_key,
    subject_rows,
)

LATEST = "latest"


def list_runs(reports_dir: Path) -> list[str]:
    """Run ids, oldest first (ids are UTC timestamps, so name order is time order)."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in reports_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and host_report_paths(p)
    )


def resolve_run(reports_dir: Path, run: str | None = None) -> Path:
    """The folder of run `run` (an id under reports_dir, or a path), or of the latest run."""
    reports_dir = Path(reports_dir)
    if run:
        candidate = Path(run)
        if candidate.is_dir():
            return candidate
        candidate = reports_dir / run
        if candidate.is_dir():
            return candidate
        known = ", ".join(list_runs(reports_dir)[-5:]) or "none"
        raise FileNotFoundError(f"no run {run!r} in {reports_dir} (latest runs: {known})")
    latest = reports_dir / LATEST
    if latest.is_dir():
        return latest.resolve()
    runs = list_runs(reports_dir)
    if not runs:
        raise FileNotFoundError(f"no runs in {reports_dir}: run `make verify` first")
    return reports_dir / runs[-1]


def load_fleet(run_dir: Path) -> dict[str, Any]:
    """fleet.json when the run was merged, else a fresh merge of its host reports."""
    merged = Path(run_dir) / "fleet.json"
    if merged.is_file():
        fleet = json.loads(merged.read_text(encoding="utf-8"))
        # A run merged by another labrig version, or a damaged fleet.json, is re-read from its
        # host reports.
        hosts = fleet.get("hosts") if isinstance(fleet, dict) else None
        if (
            isinstance(fleet, dict)
            and fleet.get("schema") == FLEET_SCHEMA
            and isinstance(hosts, list)
            and all(isinstance(h, dict) and isinstance(h.get("host"), str) for h in hosts)
        ):
            return fleet
    return build_fleet(run_dir)


@dataclass(frozen=True)
class Change:
    host: str
    subject: str  # "host", "gpu0", …
    check_id: str  # a check id, or "host" for the host's own state
    before: str
    after: str
    reason: str

    @property
    def regression(self) -> bool:
        return self.before in ("passed", HOST_OK) and self.after not in ("passed", HOST_OK)


def _states(fleet: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[tuple, tuple]]]:
    result = {}
    for host in fleet["hosts"]:
        checks = {}
        for row in subject_rows(host):
            subject = "host" if row.gpu is None else f"gpu{row.gpu}"
            for check in row.checks:
                checks[(subject, check.check_id)] = (check.status.value, check.reason)
        result[host["host"]] = (host, checks)
    return result


def diff_fleets(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Checks whose state differs between two runs, per host and GPU.

    A host that could not be verified in one of the runs shows as one line (its state), not as
    every check going missing.
    """
    old, new = _states(before), _states(after)
    changes: list[Change] = []
    for name in sorted(set(old) | set(new), key=natural_key):
        old_host, old_checks = old.get(name, (None, {}))
        new_host, new_checks = new.get(name, (None, {}))
        old_state = old_host["state"] if old_host else "absent"
        new_state = new_host["state"] if new_host else "absent"
        runnable = ("ok", "failed")
        if old_state not in runnable or new_state not in runnable:
            if old_state != new_state:
                reason = new_host["reason"] if new_host else "not in this run"
                changes.append(Change(name, "host", "host", old_state, new_state, reason))
            continue
        keys = sorted(set(old_checks) | set(new_checks), key=lambda k: (natural_key(k[0]), k[1]))
        for key in keys:
            was, _ = old_checks.get(key, ("absent", ""))
            now, reason = new_checks.get(key, ("absent", "not run in this run"))
            if was != now:
                changes.append(Change(name, key[0], key[1], was, now, reason))
    return changes


def format_diff(changes: list[Change], run_a: str, run_b: str) -> str:
    if not changes:
        return f"no check changed state between {run_a} and {run_b}\n"
    regressions = sum(c.regression for c in changes)
    lines = [f"{len(changes)} changes between {run_a} and {run_b} ({regressions} regressions):"]
    for c in changes:
        mark = "!" if c.regression else " "
        where = c.host if c.subject == "host" else f"{c.host}.{c.subject}"
        what = "" if c.check_id == "host" else f" {c.check_id}"
        lines.append(f"{mark} {where}{what}: {c.before} → {c.after}  ({c.reason})")
    return "\n".join(lines) + "\n"


# --- a host's history: each check's state across the stored runs ------------------------------

# One letter per run in a trend row: the states a check takes, and "-" where it did not run.
TREND_LETTERS = {"passed": "p", "failed": "f", "error": "e", "skipped": "s"}
ABSENT = "-"
TREND_RUNS = 10
HOST_STATE_LETTERS = {"ok": "o", "failed": "f", "unreachable": "u", "suite_error": "x"}


def load_history(
    reports_dir: Path, *, until: str | None = None, last: int = TREND_RUNS
) -> list[tuple[str, dict[str, Any]]]:
    """(run id, fleet) of the `last` runs up to and including run `until` (default: all), oldest
    first. A run whose reports cannot be read is passed over: history is a view, not a verdict."""
    runs = list_runs(Path(reports_dir))
    if until is not None:
        runs = [run for run in runs if run <= until]
    history = []
    for run in runs[-last:] if last > 0 else []:
        try:
            history.append((run, load_fleet(Path(reports_dir) / run)))
        # A stored run this labrig cannot read (another version's, a crashed merge's) is passed
        # over: it must never stop every later merge.
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
    return history


def host_trend(history: list[tuple[str, dict[str, Any]]], host: str) -> dict[str, Any]:
    """{host, runs: [run ids], states: [host state per run], checks: [{subject, check_id,
    states: "ppf-" (a letter per run, TREND_LETTERS), last_reason}]} over the runs in `history`
    that have the host; checks in the order the newest run lists them, then older ones."""
    runs, states, per_run = [], [], []
    for run_id, fleet in history:
        entry = next((h for h in fleet["hosts"] if h["host"] == host), None)
        if entry is None:
            continue
        runs.append(run_id)
        states.append(entry["state"])
        checks = {}
        for row in subject_rows(entry):
            subject = "host" if row.gpu is None else f"gpu{row.gpu}"
            for check in row.checks:
                checks[(subject, check.check_id)] = (check.status.value, check.reason)
        per_run.append(checks)
    keys: dict[tuple[str, str], None] = {}
    for checks in reversed(per_run):
        keys.update(dict.fromkeys(checks))
    rows = []
    for key in keys:
        letters = "".join(
            TREND_LETTERS[checks[key][0]] if key in checks else ABSENT for checks in per_run
        )
        last_reason = next(c[key][1] for c in reversed(per_run) if key in c)
        rows.append(
            {"subject": key[0], "check_id": key[1], "states": letters, "last_reason": last_reason}
        )
    return {"host": host, "runs": runs, "states": states, "checks": rows}


def fleet_trends(history: list[tuple[str, dict[str, Any]]], hosts: list[str]) -> dict[str, Any]:
    """Each host's trend, for the hosts of the run being rendered."""
    return {host: host_trend(history, host) for host in hosts}


def format_trend(trend: dict[str, Any], *, changed_only: bool = False) -> str:
    """A terminal table: a column per run (oldest left), a row per check and subject."""
    runs = trend["runs"]
    if not runs:
        return f"{trend['host']}: in none of the stored runs\n"
    lines = [
        f"{trend['host']}: {len(runs)} runs, {runs[0]} … {runs[-1]}, oldest left",
        "  checks: p passed  f failed  e error  s skipped  - not run",
        "  host:   o ok  f failed  u unreachable  x suite could not run",
    ]
    width = max([len(f"{r['subject']} {r['check_id']}") for r in trend["checks"]] + [10])
    host_letters = " ".join(HOST_STATE_LETTERS.get(s, "?") for s in trend["states"])
    lines.append(f"{'host':<{width}}  {host_letters}")
    shown = 0
    for row in trend["checks"]:
        seen = set(row["states"]) - {ABSENT}
        steady = len(seen) == 1
        if changed_only and steady and seen <= {"p", "s"}:
            continue
        shown += 1
        label = f"{row['subject']} {row['check_id']}"
        mark = "" if steady else f"   now: {row['last_reason']}"
        lines.append(f"{label:<{width}}  {' '.join(row['states'])}{mark}")
    if changed_only and shown < len(trend["checks"]):
        hidden = len(trend["checks"]) - shown
        lines.append(f"({hidden} checks passed, or were skipped, in every run that had them)")
    return "\n".join(lines) + "\n"
