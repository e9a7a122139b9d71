"""fleet.html: one self-contained page (inline CSS and JS, data embedded as JSON, no network).

Its Content-Security-Policy allows exactly the page's own script and style, by their sha256 (no
'unsafe-inline'): markup a host's report might smuggle into the page can run nothing.

The grid data is packed (a column index and a one-letter status per cell, reasons in a shared
string table) so that 200 hosts with 8 GPUs each stays a page a browser opens in about a second.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from verify.burn_in.plots import charts_svg
from verify.fleet.merge import host_model, subject_rows
from verify.report.csp import csp_hash

STATUS_CODES = {"passed": "p", "failed": "f", "error": "e", "skipped": "s"}
GROUP_ORDER = ("driver", "gpu", "build", "workload", "burnin")


def _asset(name: str) -> str:
    return resources.files("verify.fleet").joinpath(name).read_text(encoding="utf-8")


def _columns(fleet: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Check ids grouped by their first part, each group in the order the suite ran them."""
    seen: dict[str, None] = {}
    for host in fleet["hosts"]:
        for check in host["checks"]:
            seen.setdefault(check["check_id"], None)
    order = {name: i for i, name in enumerate(GROUP_ORDER)}
    first_seen = {check_id: i for i, check_id in enumerate(seen)}

    def group_of(check_id: str) -> str:
        return check_id.split(".", 1)[0]

    columns = sorted(
        seen, key=lambda c: (order.get(group_of(c), len(order)), group_of(c), first_seen[c])
    )
    groups: list[dict[str, Any]] = []
    for index, check_id in enumerate(columns):
        name = group_of(check_id)
        if groups and groups[-1]["name"] == name:
            groups[-1]["count"] += 1
        else:
            groups.append({"name": name, "start": index, "count": 1})
    return columns, groups


def page_data(fleet: dict[str, Any]) -> dict[str, Any]:
    columns, groups = _columns(fleet)
    column_index = {check_id: i for i, check_id in enumerate(columns)}
    reasons: list[str] = []
    reason_index: dict[str, int] = {}
    rows = []
    hosts = []
    slowest = {
        (g["host"], g["gpu"]): min(g["ratios"][k] for k in g["flagged"])
        for g in fleet["comparison"]["gpus"]
        if g["flagged"]
    }
    for h, host in enumerate(fleet["hosts"]):
        hosts.append({k: v for k, v in host.items() if k != "checks"})
        if host.get("burn_in"):
            hosts[-1]["burn_in"] = burn_in_view(host["burn_in"])
        for row in subject_rows(host):
            cells = []
            for check in row.checks:
                if check.reason not in reason_index:
                    reason_index[check.reason] = len(reasons)
                    reasons.append(check.reason)
                device = (check.framework or {}).get("device")
                framework = check.framework or {}
                label = " ".join(
                    str(x) for x in (framework.get("name"), framework.get("version"), device) if x
                )
                cells.append(
                    [
                        column_index[check.check_id],
                        STATUS_CODES[check.status.value],
                        reason_index[check.reason],
                        check.measurements or 0,
                        0 if check.severity.value == "required" else 1,
                        round(check.duration_s, 3),
                        label or 0,
                    ]
                )
            model = host_model(host) if row.gpu is None else row.gpu_name or "unknown GPU"
            rows.append({"h": h, "g": row.gpu, "model": model, "ok": row.ok, "cells": cells})
            if (host["host"], row.gpu) in slowest:
                rows[-1]["slow"] = slowest[(host["host"], row.gpu)]
    return {
        "run_id": fleet["run_id"],
        "generated": fleet["generated"],
        "rendered": fleet.get("rendered"),
        "rma": fleet.get("rma") or [],
        "totals": fleet["totals"],
        "comparison": fleet["comparison"],
        "columns": columns,
        "groups": groups,
        "reasons": reasons,
        "hosts": hosts,
        "rows": rows,
        # Each host's checks across the stored runs (verify.fleet.history.host_trend).
        "trends": fleet.get("trends") or {},
    }


def burn_in_view(burn_in: dict[str, Any]) -> dict[str, Any]:
    """A host's burn-in summary with each device's charts drawn (the burn-in's own plotting, so
    the fleet page and the host's burn-in page show the same)."""
    devices = [
        {**{k: v for k, v in d.items() if k != "charts"}, "svg": charts_svg(d.get("charts") or [])}
        for d in burn_in.get("devices") or []
    ]
    return {**burn_in, "devices": devices}


def embed_json(data: Any) -> str:
    """JSON that cannot end its <script> element early nor open a comment inside it."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(fleet: dict[str, Any]) -> str:
    page = _asset("fleet.html")
    title = html.escape(f"labrig fleet {fleet['run_id']}")
    css, js = _asset("fleet.css"), _asset("fleet.js")
    # The elements' whole text: fleet.html puts each placeholder on a line of its own.
    # Data last: nothing inside it is ever taken for a placeholder.
    for placeholder, value in (
        ("__STYLE_HASH__", csp_hash(f"\n{css}\n")),
        ("__SCRIPT_HASH__", csp_hash(f"\n{js}\n")),
        ("__TITLE__", title),
        ("__CSS__", css),
        ("__JS__", js),
        ("__DATA__", embed_json(page_data(fleet))),
    ):
        page = page.replace(placeholder, value, 1)
    return page
