"""Per-GPU plots of a burn-in as inline SVG (no script, no network): the host's own page, which
opens from a mail attachment or an air-gapped lab share, and the fleet report's host view draw
them with the same code. The fleet keeps each chart thinned to a few hundred points."""

from __future__ import annotations

import html
from typing import Any

from verify.report.csp import csp_hash

WIDTH, HEIGHT, PAD = 360, 140, 34
# Points a fleet report keeps of each chart: a 10-minute run of 8 GPUs on 200 hosts stays a page
# a browser opens; a chart is barely 300 pixels wide anyway.
FLEET_POINTS = 120
CHARTS = (
    ("series", "temperature_c", "temperature", "°C"),
    ("series", "power_w", "power", "W"),
    ("series", "sm_clock_mhz", "SM clock", "MHz"),
    ("gemm_series", "tflops", "GEMM rate", "TFLOPS"),
)


def svg_chart(times: list[float], values: list[Any], title: str, unit: str) -> str:
    points = [
        (t, v) for t, v in zip(times, values, strict=False) if v is not None and t is not None
    ]
    label = html.escape(f"{title} ({unit})")
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">'
            f'<text x="8" y="18" font-size="12">{label}: not sampled</text></svg>'
        )
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    low, high = min(p[1] for p in points), max(p[1] for p in points)
    if high == low:
        high, low = high + 1, low - 1 if low > 0 else 0
    span_t = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return PAD + (t - t0) / span_t * (WIDTH - PAD - 8)

    def y(v: float) -> float:
        return HEIGHT - 20 - (v - low) / (high - low) * (HEIGHT - 44)

    path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}">'
        f'<text x="8" y="16" font-size="12">{label}</text>'
        f'<text x="2" y="{y(high) + 4:.1f}" font-size="9">{high:g}</text>'
        f'<text x="2" y="{y(low) + 4:.1f}" font-size="9">{low:g}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 4}" font-size="9">{t0:.0f} s</text>'
        f'<text x="{WIDTH - 40}" y="{HEIGHT - 4}" font-size="9">{t1:.0f} s</text>'
        f'<rect x="{PAD}" y="24" width="{WIDTH - PAD - 8}" height="{HEIGHT - 44}" fill="none" '
        'stroke="#ccc"/>'
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{path}"/></svg>'
    )


def thin(times: list[float], values: list[Any], points: int) -> tuple[list[float], list[Any]]:
    """At most `points` of a series, keeping each stretch's lowest and highest value (in time
    order), so a clock dip or a temperature spike of a second survives the thinning."""
    kept = [(t, v) for t, v in zip(times, values, strict=False) if v is not None and t is not None]
    stretches = max(1, points // 2)
    if len(kept) <= points:
        return [t for t, _ in kept], [v for _, v in kept]
    out: list[tuple[float, Any]] = []
    for number in range(stretches):
        stretch = kept[number * len(kept) // stretches : (number + 1) * len(kept) // stretches]
        low, high = min(stretch, key=lambda p: p[1]), max(stretch, key=lambda p: p[1])
        out += sorted({low, high})
    return [t for t, _ in out], [v for _, v in out]


def chart_series(device: dict[str, Any], points: int | None = None) -> list[dict[str, Any]]:
    """A device's charts as data: [{title, unit, t, v}] in CHARTS order, thinned to `points`."""
    charts = []
    for block, key, title, unit in CHARTS:
        series = device.get(block) or {}
        times, values = series.get("t") or [], series.get(key) or []
        if points:
            times, values = thin(times, values, points)
        charts.append({"title": title, "unit": unit, "t": list(times), "v": list(values)})
    return charts


def charts_svg(charts: list[dict[str, Any]]) -> str:
    return "".join(svg_chart(c["t"], c["v"], c["title"], c["unit"]) for c in charts)


def device_charts(device: dict[str, Any]) -> str:
    return charts_svg(chart_series(device))


PAGE_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em}svg{margin:4px;border:1px "
    "solid #eee}td,th{padding:2px 8px;text-align:left}.failed,.error{color:#b00}"
)


def render_page(report: dict[str, Any]) -> str:
    burn_in = report.get("burn_in") or {}
    host = html.escape(str(report.get("host")))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        # Its one style by hash, no script at all: text a host sent can run nothing here.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src "
        f'{csp_hash(PAGE_STYLE)}">',
        f"<title>labrig burn-in {host}</title>",
        f"<style>{PAGE_STYLE}</style>",
        f"</head><body><h1>burn-in {host}</h1>",
        f"<p>{html.escape(str(report.get('started')))}, "
        f"{html.escape(str(burn_in.get('minutes')))} min asked, "
        f"{(burn_in.get('duration_s') or 0) / 60:.2f} min ran"
        + (
            f", stopped by {html.escape(str(burn_in['interrupted']))}"
            if burn_in.get("interrupted")
            else ""
        )
        + "</p><table><tr><th>check</th><th>gpu</th><th>status</th><th>reason</th></tr>",
    ]
    for check in report.get("checks") or []:
        status = html.escape(str(check.get("status")))
        gpu = "" if check.get("gpu") is None else html.escape(str(check["gpu"]))
        parts.append(
            f"<tr class='{status}'><td>{html.escape(str(check.get('check_id')))}</td>"
            f"<td>{gpu}</td><td>{status}</td>"
            f"<td>{html.escape(str(check.get('reason')))}</td></tr>"
        )
    parts.append("</table>")
    for device in burn_in.get("devices") or []:
        name = " ".join(
            str(x) for x in (device.get("label"), device.get("name"), device.get("uuid")) if x
        )
        parts.append(f"<h2>{html.escape(name)}</h2><div>{device_charts(device)}</div>")
    parts.append("</body></html>\n")
    return "".join(parts)
