"""Merging a run folder: fleet.json, fleet.junit.xml, fleet.html, reports/latest, exit codes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_fleet_fixtures import NEW_RUN, copy_run, fail_check, gpu_host_report, write_reports

from verify.fleet.__main__ import main, update_latest, write_fleet
from verify.fleet.junit import render_junit
from verify.fleet.merge import build_fleet, host_state, subject_rows


def embedded_data(html: str) -> dict:
    match = re.search(r'<script id="fleet-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no embedded data"
    return json.loads(match.group(1))


@pytest.fixture
def merged(tmp_path: Path) -> tuple[Path, dict]:
    run_dir = copy_run(NEW_RUN, tmp_path)
    fleet = build_fleet(run_dir)
    write_fleet(fleet, run_dir)
    return run_dir, fleet


def test_fleet_counts_hosts_by_state_and_gpus(merged: tuple[Path, dict]) -> None:
    _, fleet = merged
    totals = fleet["totals"]
    assert totals["hosts"] == 3
    assert totals["states"] == {"ok": 1, "failed": 1, "unreachable": 1, "suite_error": 0}
    assert (totals["gpus"], totals["failing_gpus"]) == (2, 1)
    assert totals["checks"] == {"passed": 57, "failed": 1, "skipped": 33, "error": 0}
    assert totals["ok"] is False
    assert [h["host"] for h in fleet["hosts"]] == [
        "synthetic-ws01",
        "synthetic-ws02",
        "synthetic-ws03",
    ]


def test_first_failure_names_the_check_and_the_gpu(merged: tuple[Path, dict]) -> None:
    _, fleet = merged
    ws01 = fleet["hosts"][0]
    assert ws01["state"] == "failed"
    assert ws01["reason"].startswith("gpu.ecc gpu1: 3 volatile uncorrected ECC error(s)")
    rows = subject_rows(ws01)
    assert [(r.gpu, r.ok) for r in rows] == [(None, True), (0, True), (1, False)]
    assert rows[2].first_failure.check_id == "gpu.ecc"


def test_unreachable_host_keeps_the_reason(merged: tuple[Path, dict]) -> None:
    _, fleet = merged
    ws02 = fleet["hosts"][1]
    assert ws02["state"] == "unreachable"
    assert "No route to host" in ws02["reason"]


def test_fleet_json_on_disk_is_the_fleet(merged: tuple[Path, dict]) -> None:
    run_dir, fleet = merged
    on_disk = json.loads((run_dir / "fleet.json").read_text())
    assert on_disk["schema"] == "labrig.fleet/1"
    assert on_disk["run_id"] == NEW_RUN
    assert on_disk["totals"] == fleet["totals"]


def test_junit_has_a_suite_per_host_and_a_case_per_check_per_gpu(merged: tuple[Path, dict]) -> None:
    run_dir, _ = merged
    root = ET.parse(run_dir / "fleet.junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["synthetic-ws01", "synthetic-ws02", "synthetic-ws03"]
    ws01 = suites["synthetic-ws01"]
    assert ws01.get("tests") == "57" and ws01.get("failures") == "1" and ws01.get("skipped") == "6"
    # The per-host report's scheme: classname the host, name the check id and its GPU.
    assert {c.get("classname") for c in ws01.iter("testcase")} == {"synthetic-ws01"}
    names = {c.get("name") for c in ws01.iter("testcase")}
    assert {"driver.nvml", "gpu.ecc[gpu0]", "gpu.ecc[gpu1]"} <= names
    failed = [c for c in ws01.iter("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [
        ("synthetic-ws01", "gpu.ecc[gpu1]")
    ]
    assert "uncorrected" in failed[0].find("failure").get("message")
    ws02_cases = list(suites["synthetic-ws02"].iter("testcase"))
    assert len(ws02_cases) == 1 and ws02_cases[0].find("error") is not None
    assert suites["synthetic-ws02"].get("errors") == "1"
    assert root.get("tests") == str(sum(int(s.get("tests")) for s in suites.values()))


def test_advisory_finding_is_a_passing_testcase_not_a_junit_failure(tmp_path: Path) -> None:
    report = gpu_host_report("ws05", 2)
    off = "persistence mode off: each job pays driver start-up (enable nvidia-persistenced)"
    fail_check(report, "gpu.persistence", 1, off)
    assert report["exit_code"] == 0 and report["summary"]["failed"] == 1
    run_dir = write_reports(tmp_path / "run", [report])
    fleet = build_fleet(run_dir)
    write_fleet(fleet, run_dir)
    assert fleet["hosts"][0]["state"] == "ok" and fleet["totals"]["failing_gpus"] == 0
    suite = ET.parse(run_dir / "fleet.junit.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    (case,) = [
        c
        for c in suite.iter("testcase")
        if c.get("classname") == "ws05" and c.get("name") == "gpu.persistence[gpu1]"
    ]
    assert case.find("failure") is None
    assert case.find("system-out").text.startswith(f"advisory failed: {off}")


def test_html_is_self_contained_and_embeds_the_fleet(merged: tuple[Path, dict]) -> None:
    run_dir, _ = merged
    html = (run_dir / "fleet.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    data = embedded_data(html)
    assert data["totals"]["states"]["unreachable"] == 1
    labels = [(data["hosts"][r["h"]]["host"], r["g"]) for r in data["rows"]]
    assert labels == [
        ("synthetic-ws01", None),
        ("synthetic-ws01", 0),
        ("synthetic-ws01", 1),
        ("synthetic-ws02", None),
        ("synthetic-ws03", None),
    ]
    gpu1 = data["rows"][2]
    failed = [c for c in gpu1["cells"] if c[1] == "f"]
    assert [data["columns"][c[0]] for c in failed] == ["gpu.ecc"]
    assert "uncorrected" in data["reasons"][failed[0][2]]


def test_reason_text_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    report = gpu_host_report("evil", 1)
    report["checks"][0]["reason"] = "</script><script>alert(1)</script><!--"
    run_dir = write_reports(tmp_path / "run", [report])
    write_fleet(build_fleet(run_dir), run_dir)
    html = (run_dir / "fleet.html").read_text()
    assert "alert(1)</script>" not in html
    assert "</script><script>alert" in json.dumps(embedded_data(html))


def test_suite_error_and_unreadable_reports_are_hosts_not_crashes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    no_venv = {"host": "ws04", "checks": [], "exit_code": 2, "suite_error": "no venv at /opt/x"}
    write_reports(run_dir, [no_venv])
    (run_dir / "ws05.json").write_text("{ truncated")
    fleet = build_fleet(run_dir)
    states = {h["host"]: (h["state"], h["reason"]) for h in fleet["hosts"]}
    assert states["ws04"] == ("suite_error", "no venv at /opt/x")
    assert states["ws05"][0] == "suite_error" and "unreadable" in states["ws05"][1]


def test_nonzero_exit_without_a_failing_check_is_never_ok() -> None:
    report = gpu_host_report("ws09", 1)
    report["exit_code"] = 1
    assert host_state(report)[0] == "suite_error"
    report["exit_code"] = 0
    assert host_state(report) == ("ok", "all required checks passed")


def test_merge_command_exit_code_and_latest(tmp_path: Path, capsys) -> None:
    healthy = write_reports(tmp_path / "20261101T000000Z", [gpu_host_report("synthetic-ws01", 2)])
    new = copy_run(NEW_RUN, tmp_path)
    assert main(["merge", str(healthy), "--width", "100"]) == 0
    assert (tmp_path / "latest").resolve() == healthy.resolve()
    assert main(["merge", str(new), "--width", "100"]) == 1
    assert (tmp_path / "latest").resolve() == new.resolve()
    assert not (tmp_path / "latest").readlink().is_absolute()
    out = capsys.readouterr().out
    assert "FLEET FAILED: 3 hosts: 1 ok, 1 failed, 1 unreachable" in out
    assert all(len(line) <= 100 for line in out.splitlines())


def test_merge_of_an_empty_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["merge", str(tmp_path)]) == 2
    assert "no host reports" in capsys.readouterr().err


def test_update_latest_replaces_an_existing_link(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        update_latest(tmp_path, tmp_path / name)
    assert (tmp_path / "latest").resolve() == (tmp_path / "b").resolve()


def test_fleet_check_entries_match_the_result_model(merged: tuple[Path, dict]) -> None:
    from verify.result import CheckResult

    _, fleet = merged
    for raw in fleet["hosts"][0]["checks"]:
        assert CheckResult.from_dict(raw).to_dict() == raw


def test_generated_is_the_runs_time_however_often_it_is_rendered(tmp_path):
    run_dir = copy_run(NEW_RUN, tmp_path)
    first = build_fleet(run_dir)
    again = build_fleet(run_dir)
    assert first["generated"] == again["generated"] == "2026-11-27T10:22:33+00:00"
    assert "rendered" in first
    other = write_reports(tmp_path / "adhoc", [gpu_host_report("ws09", 1)])
    assert build_fleet(other)["generated"] == gpu_host_report("ws09", 1)["started"]


def test_rma_view_lists_each_failing_gpu_with_its_identity(tmp_path):
    fleet = build_fleet(copy_run(NEW_RUN, tmp_path))
    [card] = fleet["rma"]
    assert card["host"] == "synthetic-ws01" and card["gpu"] == 1
    assert card["uuid"] == "GPU-b7e1d950-2a6f-4c38-8d1b-5f0e93a6c2d4"
    assert card["pci_bus_id"] == "00000000:5F:00.0" and card["vbios"] == "94.02.42.00.A9"
    assert card["driver"] == "535.216.03" and "serial" in card
    assert card["check_id"] == "gpu.ecc"
    assert card["reason"].startswith("3 volatile uncorrected ECC error(s)")


def test_fleet_junit_names_the_card_of_each_gpu_testcase(tmp_path):
    fleet = build_fleet(copy_run(NEW_RUN, tmp_path))
    root = ET.fromstring(render_junit(fleet))
    case = next(c for c in root.iter("testcase") if c.get("name") == "gpu.ecc[gpu1]")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["gpu_uuid"] == "GPU-b7e1d950-2a6f-4c38-8d1b-5f0e93a6c2d4"
    assert properties["gpu_pci_bus_id"] == "00000000:5F:00.0"
    assert properties["driver"] == "535.216.03"
    assert properties["link_max"] == "Gen4 x16"
