"""Command line of the fleet report (see the package docstring); the one writer of a run
folder's merged files and of `reports/latest`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from verify.burn_in.plots import render_page
from verify.fleet.history import (
    TREND_RUNS,
    diff_fleets,
    fleet_trends,
    format_diff,
    format_trend,
    host_trend,
    list_runs,
    load_fleet,
    load_history,
    resolve_run,
)
from verify.fleet.html import render_html
from verify.fleet.ingest import clean_text
from verify.fleet.junit import render_junit
from verify.fleet.merge import BURN_IN_SUFFIX, build_fleet, read_host_report
from verify.fleet.summary import render_summary

DEFAULT_REPORTS_DIR = "reports"


def _say(text: str) -> None:
    """Print to the admin's terminal: no escape sequence a host's text carries gets through, even
    from a run stored before reports were cleaned on ingest."""
    sys.stdout.write(clean_text(text))


def write_fleet(fleet: dict[str, Any], run_dir: Path) -> dict[str, Path]:
    """Write fleet.json, fleet.junit.xml and fleet.html next to the host reports, and each
    burn-in's page from its report: drawn here, on the controller, never taken from a host."""
    run_dir = Path(run_dir)
    outputs = {
        "json": (run_dir / "fleet.json", json.dumps(fleet, separators=(",", ":")) + "\n"),
        "junit": (run_dir / "fleet.junit.xml", render_junit(fleet)),
        "html": (run_dir / "fleet.html", render_html(fleet)),
    }
    for burn_in in sorted(run_dir.glob(f"*{BURN_IN_SUFFIX}")):
        page = burn_in.with_name(burn_in.name.removesuffix(".json") + ".html")
        _write_atomically(page, render_page(read_host_report(burn_in)))
    for path, text in outputs.values():
        _write_atomically(path, text)
    return {kind: path for kind, (path, _) in outputs.items()}


def _write_atomically(path: Path, text: str) -> None:
    # A reader (a browser tab on fleet.html, CI picking up the XML) never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def update_latest(reports_dir: Path, run_dir: Path) -> Path:
    """Point `reports_dir/latest` at run_dir (relative, so the folder can be moved or copied)."""
    link = Path(reports_dir) / "latest"
    target = os.path.relpath(Path(run_dir).resolve(), Path(reports_dir).resolve())
    tmp = link.with_name(".latest.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)
    return link


def _width(requested: int | None) -> int:
    if requested:
        return requested
    # Under Ansible there is no terminal: fall back to a width that still fits most screens.
    return shutil.get_terminal_size(fallback=(132, 40)).columns


def _with_trends(fleet: dict[str, Any], run_dir: Path, reports_dir: Path) -> dict[str, Any]:
    """Each host's trend over the stored runs up to this one (this one as just merged)."""
    earlier = [
        (run, stored)
        for run, stored in load_history(reports_dir, until=run_dir.name, last=TREND_RUNS)
        if run != run_dir.name
    ]
    history = [*earlier[-(TREND_RUNS - 1) :], (run_dir.name, fleet)]
    return {**fleet, "trends": fleet_trends(history, [h["host"] for h in fleet["hosts"]])}


def _render(run_dir: Path, args: argparse.Namespace, reports_dir: Path) -> int:
    fleet = _with_trends(build_fleet(run_dir, flag_below=args.flag_below), run_dir, reports_dir)
    paths = write_fleet(fleet, run_dir)
    _say(
        render_summary(
            fleet, width=_width(args.width), gpu_rows=args.gpu_rows, report_path=str(paths["html"])
        )
    )
    return 0 if fleet["totals"]["ok"] else 1


def carry_verify_reports(run_dir: Path, reports_dir: Path) -> list[str]:
    """Copy into a burn-in run each burned-in host's newest verify report from the earlier runs
    in `reports_dir`, so the fleet report shows the burn-in beside it. Searched per host, not
    taken from `latest`: another run may have moved it since. Copied, not referenced, so
    re-rendering the run later shows the same."""
    carried = []
    earlier = [
        reports_dir / run
        for run in reversed(list_runs(reports_dir))
        if (reports_dir / run).resolve() != run_dir.resolve()
    ]
    for burn_in in sorted(run_dir.glob(f"*{BURN_IN_SUFFIX}")):
        host = burn_in.name.removesuffix(BURN_IN_SUFFIX)
        if (run_dir / f"{host}.json").exists():
            continue
        source = next((run for run in earlier if (run / f"{host}.json").is_file()), None)
        if source is None:
            continue
        for suffix in (".json", ".junit.xml"):
            if (source / f"{host}{suffix}").is_file():
                shutil.copy2(source / f"{host}{suffix}", run_dir / f"{host}{suffix}")
        carried.append(f"{host} (from {source.name})")
    return carried


def cmd_merge(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if args.carry_from:
        carried = carry_verify_reports(run_dir, Path(args.carry_from))
        if carried:
            print(f"verify reports carried into this burn-in run: {', '.join(carried)}")
    reports_dir = Path(args.reports_dir) if args.reports_dir else run_dir.parent
    status = _render(run_dir, args, reports_dir)
    if not args.no_latest:
        update_latest(reports_dir, run_dir)
    return status


def cmd_report(args: argparse.Namespace) -> int:
    reports_dir = Path(args.reports_dir or DEFAULT_REPORTS_DIR)
    run_dir = resolve_run(reports_dir, args.run)
    _render(run_dir, args, reports_dir)
    # Re-rendering is a view: the fleet's verdict was the exit code of the run itself.
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    reports_dir = Path(args.reports_dir or DEFAULT_REPORTS_DIR)
    run_a = resolve_run(reports_dir, args.run_a)
    run_b = resolve_run(reports_dir, args.run_b)
    changes = diff_fleets(load_fleet(run_a), load_fleet(run_b))
    _say(format_diff(changes, run_a.name, run_b.name))
    return 1 if args.fail_on_regression and any(c.regression for c in changes) else 0


def cmd_trend(args: argparse.Namespace) -> int:
    reports_dir = Path(args.reports_dir or DEFAULT_REPORTS_DIR)
    history = load_history(reports_dir, last=args.last)
    if not history:
        raise FileNotFoundError(f"no runs in {reports_dir}: run `make verify` first")
    trend = host_trend(history, args.host)
    if not trend["runs"]:
        known = sorted({h["host"] for _, fleet in history for h in fleet["hosts"]})
        raise FileNotFoundError(
            f"{args.host} is in none of the last {len(history)} runs (hosts: {', '.join(known)})"
        )
    _say(format_trend(trend, changed_only=not args.all))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verify.fleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def render_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--width", type=int, help="terminal width (default: detected, or 132)")
        p.add_argument(
            "--gpu-rows",
            choices=("auto", "all", "failed"),
            default="auto",
            help="GPU lines in the summary: all, only failing, or all unless over 200 lines",
        )
        p.add_argument(
            "--flag-below",
            type=float,
            default=float(os.environ.get("LABRIG_FLAG_BELOW", "0.8")),
            help="flag a GPU under this ratio to its model's median (default 0.8)",
        )

    merge = sub.add_parser("merge", help="merge a run folder's host reports")
    merge.add_argument("run_dir")
    merge.add_argument("--reports-dir", help="where `latest` lives (default: RUN_DIR's parent)")
    merge.add_argument("--no-latest", action="store_true", help="leave reports/latest alone")
    merge.add_argument(
        "--carry-from",
        metavar="REPORTS_DIR",
        help="burn-in runs: copy each burned-in host's newest verify report from the runs here",
    )
    merge.add_argument("--no-carry", dest="carry_from", action="store_const", const=None)
    render_options(merge)
    merge.set_defaults(func=cmd_merge)

    report = sub.add_parser("report", help="re-render a run (default: the latest)")
    report.add_argument("--run", help="run id (folder name under the reports dir) or a path")
    report.add_argument("--reports-dir", help=f"default: ./{DEFAULT_REPORTS_DIR}")
    render_options(report)
    report.set_defaults(func=cmd_report)

    diff = sub.add_parser("diff", help="checks that changed state between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--reports-dir", help=f"default: ./{DEFAULT_REPORTS_DIR}")
    diff.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a check went bad"
    )
    diff.set_defaults(func=cmd_diff)

    trend = sub.add_parser("trend", help="one host's checks across the stored runs")
    trend.add_argument("host")
    trend.add_argument("--reports-dir", help=f"default: ./{DEFAULT_REPORTS_DIR}")
    trend.add_argument(
        "--last", type=int, default=TREND_RUNS, help=f"runs to show (default {TREND_RUNS})"
    )
    trend.add_argument(
        "--all", action="store_true", help="every check, also those that passed in every run"
    )
    trend.set_defaults(func=cmd_trend)
    return parser


# Neither 0 (every host fit) nor 1 (some host not): the verify playbook fails the merge on it.
INTERNAL_ERROR = 3


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, NotADirectoryError) as exc:
        print(f"error: {clean_text(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"error: the fleet command failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
