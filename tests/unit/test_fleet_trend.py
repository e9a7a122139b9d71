"""A host's history: each check's state across the stored runs, from the CLI and in fleet.html."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_fleet_html_chromium import LoadedPage, browser  # noqa: F401 (browser: a fixture)

from verify.fleet import __main__ as fleet_cli
from verify.fleet.history import TREND_RUNS, format_trend, host_trend, load_history
from verify.fleet.html import page_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
OLD, NEW = "20261120T090000Z", "20261127T102233Z"


def fleet(hosts):
    return {"hosts": hosts}


def host(name, state, checks):
    return {
        "host": name,
        "state": state,
        "gpus": [],
        "checks": [
            {"check_id": c, "status": s, "reason": f"{c} {s}", "gpu": g} for c, s, g in checks
        ],
    }


HISTORY = [
    (
        "r1",
        fleet([host("ws01", "ok", [("driver.nvml", "passed", None), ("gpu.ecc", "passed", 0)])]),
    ),
    ("r2", fleet([host("ws02", "ok", [])])),
    ("r3", fleet([host("ws01", "unreachable", [])])),
    (
        "r4",
        fleet(
            [
                host(
                    "ws01",
                    "failed",
                    [
                        ("driver.nvml", "passed", None),
                        ("gpu.ecc", "failed", 0),
                        ("gpu.xid", "error", 0),
                    ],
                )
            ]
        ),
    ),
]


def test_trend_is_a_letter_per_run_that_has_the_host():
    trend = host_trend(HISTORY, "ws01")
    assert trend["runs"] == ["r1", "r3", "r4"]
    assert trend["states"] == ["ok", "unreachable", "failed"]
    rows = {(r["subject"], r["check_id"]): r["states"] for r in trend["checks"]}
    assert rows == {
        ("host", "driver.nvml"): "p-p",
        ("gpu0", "gpu.ecc"): "p-f",
        ("gpu0", "gpu.xid"): "--e",
    }
    (ecc,) = [r for r in trend["checks"] if r["check_id"] == "gpu.ecc"]
    assert ecc["last_reason"] == "gpu.ecc failed"


def test_a_host_in_no_run_has_an_empty_trend():
    assert host_trend(HISTORY, "ws09") == {"host": "ws09", "runs": [], "states": [], "checks": []}
    assert "in none of the stored runs" in format_trend(host_trend(HISTORY, "ws09"))


def test_the_table_shows_what_changed_and_counts_the_rest():
    text = format_trend(host_trend(HISTORY, "ws01"), changed_only=True)
    lines = text.splitlines()
    assert lines[0] == "ws01: 3 runs, r1 … r4, oldest left"
    assert any(
        line.split()[:2] == ["host", "o"] and line.split()[2:] == ["u", "f"] for line in lines
    )
    assert any(
        "gpu0 gpu.ecc" in line and "p - f" in line and "now: gpu.ecc failed" in line
        for line in lines
    )
    assert any("gpu0 gpu.xid" in line for line in lines)
    assert not any("driver.nvml" in line for line in lines)
    assert lines[-1] == "(1 checks passed, or were skipped, in every run that had them)"
    assert "driver.nvml" in format_trend(host_trend(HISTORY, "ws01"))


@pytest.fixture
def reports(tmp_path):
    folder = tmp_path / "reports"
    shutil.copytree(FIXTURES, folder)
    return folder


def test_merge_writes_each_hosts_trend_into_fleet_json_and_the_page(reports, capsys):
    assert fleet_cli.main(["merge", str(reports / OLD), "--width", "100"]) in (0, 1)
    assert fleet_cli.main(["merge", str(reports / NEW), "--width", "100"]) in (0, 1)
    capsys.readouterr()
    merged = json.loads((reports / NEW / "fleet.json").read_text())
    trend = merged["trends"]["synthetic-ws01"]
    assert trend["runs"] == [OLD, NEW]
    changed = {r["check_id"]: r["states"] for r in trend["checks"] if len(set(r["states"])) > 1}
    assert changed == {"gpu.ecc": "pf"}
    # The older run's trend stops at that run, whatever came after it.
    older = json.loads((reports / OLD / "fleet.json").read_text())
    assert older["trends"]["synthetic-ws01"]["runs"] == [OLD]
    assert page_data(merged)["trends"] == merged["trends"]
    page = (reports / NEW / "fleet.html").read_text()
    assert "detail-history" in page and '"runs":["20261120T090000Z"' in page


def test_trend_command_and_its_errors(reports, capsys):
    fleet_cli.main(["merge", str(reports / OLD), "--no-latest", "--width", "100"])
    fleet_cli.main(["merge", str(reports / NEW), "--no-latest", "--width", "100"])
    capsys.readouterr()
    assert fleet_cli.main(["trend", "synthetic-ws01", "--reports-dir", str(reports)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"synthetic-ws01: 2 runs, {OLD} … {NEW}")
    assert "gpu1 gpu.ecc" in out and "p f" in out
    assert fleet_cli.main(["trend", "nosuch", "--reports-dir", str(reports)]) == 2
    assert "nosuch is in none of the last 2 runs" in capsys.readouterr().err
    assert fleet_cli.main(["trend", "x", "--reports-dir", str(reports / "missing")]) == 2


def test_history_keeps_the_last_runs_up_to_the_one_asked(reports):
    assert [run for run, _ in load_history(reports, until=OLD)] == [OLD]
    assert [run for run, _ in load_history(reports, last=1)] == [NEW]
    assert load_history(reports, last=0) == []
    assert TREND_RUNS >= 2


@pytest.mark.chromium
def test_host_view_shows_the_checks_that_changed_across_runs(reports, capsys, browser):  # noqa: F811
    fleet_cli.main(["merge", str(reports / OLD), "--no-latest", "--width", "100"])
    fleet_cli.main(["merge", str(reports / NEW), "--no-latest", "--width", "100"])
    capsys.readouterr()
    loaded = LoadedPage(browser, reports / NEW / "fleet.html")
    try:
        loaded.page.click("#grid-body a[data-host='0']")
        assert loaded.page.inner_text("#detail-history").startswith("history: 2 runs")
        table = loaded.page.inner_text("#detail table.trend")
        assert "gpu1 gpu.ecc" in table and "driver.nvml" not in table
        titles = loaded.page.eval_on_selector_all(
            "#detail table.trend i", "squares => squares.map(s => s.title)"
        )
        assert f"{NEW}: failed" in titles and f"{OLD}: passed" in titles
        assert loaded.errors == []
    finally:
        loaded.page.close()
