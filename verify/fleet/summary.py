"""The fleet summary printed at the end of `make verify`: one line per host and per GPU.

Every line fits the terminal width: long reasons are cut, never wrapped, so 200 hosts still
read as a table.
"""

from __future__ import annotations

from typing import Any

from verify.fleet.merge import SubjectRow, host_model, subject_rows

# Beyond this many lines, GPUs with no failing check are folded into their host's line.
AUTO_GPU_ROW_LIMIT = 200

_STATE_LABELS = {
    "ok": "ok",
    "failed": "FAILED",
    "unreachable": "UNREACH",
    "suite_error": "NO-SUITE",
}

_COLUMNS = (
    # (title, width, align)
    ("HOST / GPU", 0, "<"),
    ("STATE", 8, "<"),
    ("PASS", 4, ">"),
    ("FAIL", 4, ">"),
    ("SKIP", 4, ">"),
    ("GPU MODEL", 20, "<"),
    ("DRIVER", 10, "<"),
    ("CUDA", 5, "<"),
    ("MLP ACC", 7, ">"),
    ("MLP s", 6, ">"),
    ("FIRST FAILURE", 0, "<"),
)


def cut(text: str, width: int) -> str:
    indent = str(text)[: len(str(text)) - len(str(text).lstrip(" "))]
    text = indent + " ".join(str(text).split())
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _fmt_number(value: Any, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}f}"


def _failure_text(row: SubjectRow) -> str:
    failure = row.first_failure
    if failure is None:
        return ""
    return f"{failure.check_id}: {failure.reason}"


def _short_model(name: str) -> str:
    # Every model in this column is NVIDIA's: the vendor prefix only costs width.
    return name.replace("NVIDIA ", "")


def _cells_for_host(host: dict[str, Any], rows: list[SubjectRow]) -> list[str]:
    """The host's line counts all its checks (its own and its GPUs') and names its first failure."""
    counts = host["counts"]
    own = rows[0]
    versions = host.get("versions") or {}
    if host["state"] in ("unreachable", "suite_error"):
        return [
            host["host"],
            _STATE_LABELS[host["state"]],
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            host["reason"],
        ]
    return [
        host["host"],
        _STATE_LABELS[host["state"]],
        str(counts["passed"]),
        str(counts["failed"] + counts["error"]),
        str(counts["skipped"]),
        _short_model(host_model(host)) or "-",
        versions.get("driver") or "-",
        versions.get("cuda_driver") or "-",
        _fmt_number(own.measurement("workload.mlp", "accuracy"), 3),
        _fmt_number(own.measurement("workload.mlp", "train_time_s"), 2),
        "" if host["state"] == "ok" else host["reason"],
    ]


def _cells_for_gpu(row: SubjectRow) -> list[str]:
    counts = row.counts
    return [
        f"  gpu{row.gpu}",
        "ok" if row.ok else "FAILED",
        str(counts["passed"]),
        str(counts["failed"] + counts["error"]),
        str(counts["skipped"]),
        _short_model(row.gpu_name or "?"),
        "",
        "",
        _fmt_number(row.measurement("workload.mlp", "accuracy"), 3),
        _fmt_number(row.measurement("workload.mlp", "train_time_s"), 2),
        _failure_text(row),
    ]


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


# Dropped in this order on a narrow terminal (80 columns), so that the columns left are never cut
# in the middle and the first failure keeps room to be read.
_DROPPABLE = ("MLP s", "CUDA", "DRIVER", "SKIP")
_MIN_REASON_WIDTH = 20


def _layout(lines: list[list[str]], width: int) -> list[tuple[int, int]]:
    """(column index, width) of every column shown."""
    host_width = max([len(_COLUMNS[0][0]), *(len(cells[0]) for cells in lines)])
    fixed = [(0, min(host_width, 28))] + [(i, w) for i, (_, w, _) in enumerate(_COLUMNS) if w]
    droppable = [i for i, (title, _, _) in enumerate(_COLUMNS) if title in _DROPPABLE]
    for index in sorted(droppable, key=lambda i: _DROPPABLE.index(_COLUMNS[i][0])):
        if sum(w + 1 for _, w in fixed) + _MIN_REASON_WIDTH <= width:
            break
        fixed = [(i, w) for i, w in fixed if i != index]
    used = sum(w + 1 for _, w in fixed)  # one space after each fixed column
    return [*fixed, (len(_COLUMNS) - 1, max(width - used, 12))]


def _format(cells: list[str], layout: list[tuple[int, int]]) -> str:
    parts = []
    for index, w in layout:
        align = _COLUMNS[index][2]
        parts.append(f"{cut(cells[index], w):{align}{w}}")
    return " ".join(parts).rstrip()


def render_summary(
    fleet: dict[str, Any], *, width: int = 120, gpu_rows: str = "auto", report_path: str = ""
) -> str:
    """The terminal table; gpu_rows is "all", "failed" (only failing GPUs) or "auto"."""
    hosts = fleet["hosts"]
    per_host = [(host, subject_rows(host)) for host in hosts]
    total_rows = sum(len(rows) for _, rows in per_host)
    show_all = gpu_rows == "all" or (gpu_rows == "auto" and total_rows <= AUTO_GPU_ROW_LIMIT)

    lines: list[list[str]] = []
    hidden = 0
    for host, rows in per_host:
        lines.append(_cells_for_host(host, rows))
        for row in rows[1:]:
            if show_all or not row.ok:
                lines.append(_cells_for_gpu(row))
            else:
                hidden += 1
    layout = _layout(lines, width)
    rule = "-" * min(width, sum(w + 1 for _, w in layout) - 1)
    out = [_fit(_format([title for title, _, _ in _COLUMNS], layout), width), rule]
    # On a very narrow terminal even the fixed columns overflow: cut the line, never wrap it.
    out.extend(_fit(_format(cells, layout), width) for cells in lines)
    out.append(rule)
    if hidden:
        out.append(f"({hidden} passing GPU rows folded into their hosts: --gpu-rows all)")
    out.extend(cut(line, width) for line in _slow_gpu_lines(fleet))
    out.extend(
        cut(f"suspect host {suspect['host']}: {suspect['why']}", width)
        for suspect in fleet.get("suspects") or []
    )
    out.extend(cut(line, width) for line in burn_in_lines(fleet))
    out.extend(cut(line, width) for line in totals_line(fleet).split("\n"))
    if report_path:
        out.append(cut(f"report: {report_path}", width))
    return "\n".join(out) + "\n"


def burn_in_lines(fleet: dict[str, Any]) -> list[str]:
    """One line per burned-in host: its verdict, how long it ran, and the first failure."""
    lines = []
    for host in fleet["hosts"]:
        burn_in = host.get("burn_in")
        if not burn_in:
            continue
        counts = burn_in.get("counts") or {}
        ran = (burn_in.get("duration_s") or 0) / 60
        verdict = "ok" if burn_in.get("ok") else "FAILED"
        line = (
            f"burn-in {host['host']}: {verdict}, {ran:.2f} of {burn_in.get('minutes')} min, "
            f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed"
        )
        first = burn_in.get("first_failure")
        if first:
            where = "" if first.get("gpu") is None else f" gpu{first['gpu']}"
            line += f": {first['check_id']}{where}: {first['reason']}"
        lines.append(line)
    return lines


def _slow_gpu_lines(fleet: dict[str, Any]) -> list[str]:
    comparison = fleet.get("comparison") or {}
    labels = {m["key"]: m["label"] for m in comparison.get("metrics", [])}
    lines = []
    by_gpu = {(g["host"], g["gpu"]): g for g in comparison.get("gpus", [])}
    for flagged in comparison.get("flagged", []):
        entry = by_gpu[(flagged["host"], flagged["gpu"])]
        ratios = ", ".join(f"{labels[k]} {entry['ratios'][k]:.2f}x" for k in flagged["metrics"])
        lines.append(
            f"slow vs {entry['model']} median: {entry['host']} gpu{entry['gpu']}: {ratios}"
        )
    return lines


def totals_line(fleet: dict[str, Any]) -> str:
    totals = fleet["totals"]
    states = totals["states"]
    checks = totals["checks"]
    """Two lines: the verdict with host counts, then GPUs and checks."""
    flagged = len((fleet.get("comparison") or {}).get("flagged", []))
    verdict = "FLEET OK" if totals["ok"] else "FLEET FAILED"
    return (
        f"{verdict}: {totals['hosts']} hosts: {states['ok']} ok, {states['failed']} failed, "
        f"{states['unreachable']} unreachable, {states['suite_error']} suite not run\n"
        f"  {totals['gpus']} GPUs, {totals['failing_gpus']} failing, {flagged} slow · checks "
        f"{checks['passed']} passed, {checks['failed']} failed, {checks['error']} errors, "
        f"{checks['skipped']} skipped"
    )
