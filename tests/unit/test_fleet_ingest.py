"""Reports from the hosts are hostile input: one bad report is that host's suite error, never a
crash, a blank page or another host's row (verify/fleet/ingest.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_fleet_fixtures import fail_check, gpu_host_report, write_reports

from verify.fleet.__main__ import INTERNAL_ERROR, main
from verify.fleet.history import load_history
from verify.fleet.ingest import MAX_REPORT_BYTES
from verify.fleet.junit import render_junit
from verify.fleet.merge import build_fleet


def _honest(run_dir: Path) -> Path:
    return write_reports(run_dir, [gpu_host_report("ws01", 2), gpu_host_report("ws02", 1)])


def _state(fleet: dict, host: str) -> tuple[str, str]:
    entry = next(h for h in fleet["hosts"] if h["host"] == host)
    return entry["state"], entry["reason"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"host": "ws09", "duration_s": NaN, "checks": []}', "nan is not a finite number"),
        ('{"host": "ws09", "duration_s": Infinity, "checks": []}', "inf is not a finite number"),
        ('{"host": "ws09", "checks": []' + ', "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested"),
        ('{"host": "ws09", "gpus": "x", "checks": []}', "gpus is not a list"),
        ('{"host": "ws09", "checks": [{"check_id": 1}]}', "check_id is not text"),
        ('{"host": "ws09", "gpus": [{"index": "0<img src=x onerror=alert(1)>"}]}', "GPU index"),
        ("[1, 2]", "top level is not an object"),
    ],
)
def test_a_bad_report_is_its_hosts_suite_error_and_the_fleet_document_stays_valid(
    tmp_path: Path, text: str, named: str
) -> None:
    run_dir = _honest(tmp_path / "run")
    (run_dir / "ws09.json").write_text(text)

    fleet = build_fleet(run_dir)

    state, reason = _state(fleet, "ws09")
    assert state == "suite_error" and named in reason, reason
    assert _state(fleet, "ws01")[0] == "ok"
    # What fleet.html's JSON.parse and fleet.junit.xml's parser will read.
    json.loads(json.dumps(fleet, allow_nan=False))
    ET.fromstring(render_junit(fleet))


def test_an_oversized_report_is_refused_unread(tmp_path: Path) -> None:
    run_dir = _honest(tmp_path / "run")
    (run_dir / "ws09.json").write_text('{"host": "ws09", "pad": "' + "x" * MAX_REPORT_BYTES + '"}')
    state, reason = _state(build_fleet(run_dir), "ws09")
    assert state == "suite_error" and "more than the" in reason, reason


def test_a_report_is_keyed_by_its_file_not_the_name_it_claims(tmp_path: Path) -> None:
    broken = gpu_host_report("ws01", 2)
    fail_check(broken, "gpu.ecc", gpu=1, reason="uncorrectable ECC errors")
    run_dir = write_reports(tmp_path / "run", [broken])
    # ws99 says it is ws01, with every check passing.
    forged = gpu_host_report("ws01", 2)
    (run_dir / "ws99.json").write_text(json.dumps(forged))

    fleet = build_fleet(run_dir)

    assert sorted(h["host"] for h in fleet["hosts"]) == ["ws01", "ws99"]
    assert _state(fleet, "ws01")[0] == "failed"
    ws99 = next(h for h in fleet["hosts"] if h["host"] == "ws99")
    assert ws99["claimed_host"] == "ws01"
    assert fleet["suspects"] == [{"host": "ws99", "why": "its report claims to be ws01"}]


def test_a_refused_report_still_names_the_host_it_claims_to_be(tmp_path: Path, capsys) -> None:
    run_dir = _honest(tmp_path / "run")
    (run_dir / "ws09.json").write_text('{"host": "ws01", "duration_s": NaN, "checks": []}')

    assert main(["merge", str(run_dir), "--no-latest", "--width", "200"]) == 1

    printed = capsys.readouterr().out
    assert (
        "suspect host ws09: report refused: nan is not a finite number; its report claims to be"
        " ws01" in printed
    ), printed


def test_control_characters_never_reach_a_terminal_or_the_junit_file(tmp_path: Path) -> None:
    report = gpu_host_report("ws01", 1)
    fail_check(report, "gpu.ecc", gpu=0, reason="\x1b]2;owned\x07\x1b[2J\x9b31m errors\x00")
    run_dir = write_reports(tmp_path / "run", [report])

    fleet = build_fleet(run_dir)

    text = json.dumps(fleet, ensure_ascii=False)
    assert not any(c in text for c in "\x1b\x07\x00\x9b"), text
    ET.fromstring(render_junit(fleet))


def test_a_crashed_earlier_run_never_stops_a_later_merge(tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    # A run whose merge crashed on a bad report (no fleet.json), and one with a damaged fleet.json.
    crashed = _honest(reports / "20261201T000000Z")
    (crashed / "ws09.json").write_text('{"host": "ws09", "gpus": "x"}')
    damaged = _honest(reports / "20261201T120000Z")
    (damaged / "fleet.json").write_text('{"schema": "labrig.fleet/1", "hosts": "x"}')
    history = dict(load_history(reports))
    assert _state(history["20261201T000000Z"], "ws09")[0] == "suite_error"
    assert _state(history["20261201T120000Z"], "ws01")[0] == "ok"
    later = _honest(reports / "20261202T000000Z")

    assert main(["merge", str(later), "--reports-dir", str(reports), "--width", "80"]) == 0


def test_a_failing_merge_is_not_taken_for_an_unfit_host(tmp_path: Path, monkeypatch, capsys):
    run_dir = _honest(tmp_path / "reports" / "20261203T000000Z")

    def broken(*_args, **_kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr("verify.fleet.__main__.build_fleet", broken)
    assert main(["merge", str(run_dir), "--width", "80"]) == INTERNAL_ERROR
    assert "the fleet command failed: TypeError: a bug" in capsys.readouterr().err


def test_the_trend_and_diff_of_stored_runs_print_no_escape_sequence(tmp_path: Path, capsys):
    reports = tmp_path / "reports"
    runs = []
    for run, reason in (("20261201T000000Z", "ok"), ("20261202T000000Z", "\x1b]2;owned\x07 bad")):
        report = gpu_host_report("ws01", 1)
        if reason != "ok":
            fail_check(report, "gpu.ecc", gpu=0, reason=reason)
        run_dir = write_reports(reports / run, [report])
        # As a labrig from before ingest cleaned reports stored it.
        fleet = build_fleet(run_dir)
        for check in fleet["hosts"][0]["checks"]:
            if check["check_id"] == "gpu.ecc" and reason != "ok":
                check["reason"] = reason
        (run_dir / "fleet.json").write_text(json.dumps(fleet))
        runs.append(run)
    capsys.readouterr()

    main(["trend", "ws01", "--reports-dir", str(reports), "--all"])
    main(["diff", *runs, "--reports-dir", str(reports)])

    printed = capsys.readouterr().out
    assert "owned" in printed and "\x1b" not in printed and "\x07" not in printed, repr(printed)


def test_a_burn_in_page_is_drawn_on_the_controller_never_taken_from_the_host(tmp_path: Path):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "burn_in"
    run_dir = _honest(tmp_path / "run")
    report = json.loads((fixture / "synthetic-ws01.burn-in.json").read_text())
    report["checks"][0]["reason"] = "<script>alert(1)</script>"
    (run_dir / "ws01.burn-in.json").write_text(json.dumps(report))
    # A page a rooted host wrote itself, as the playbook used to fetch it.
    (run_dir / "ws01.burn-in.html").write_text("<script>alert('from the host')</script>")

    assert main(["merge", str(run_dir), "--no-latest", "--width", "80"]) in (0, 1)

    page = (run_dir / "ws01.burn-in.html").read_text()
    assert "from the host" not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<svg" in page
    assert "Content-Security-Policy" in page and "'unsafe-inline'" not in page
