"""History: resolving runs (latest, by id) and the diff of two runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_fleet_fixtures import NEW_RUN, OLD_RUN, copy_run

from verify.fleet.__main__ import main, update_latest
from verify.fleet.history import diff_fleets, format_diff, list_runs, load_fleet, resolve_run


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    copy_run(OLD_RUN, tmp_path)
    copy_run(NEW_RUN, tmp_path)
    return tmp_path


def test_diff_lists_checks_that_changed_state(reports: Path) -> None:
    changes = diff_fleets(load_fleet(reports / OLD_RUN), load_fleet(reports / NEW_RUN))
    found = {(c.host, c.subject, c.check_id): (c.before, c.after) for c in changes}
    assert found == {
        ("synthetic-ws01", "gpu1", "gpu.ecc"): ("passed", "failed"),
        ("synthetic-ws02", "host", "host"): ("ok", "unreachable"),
        ("synthetic-ws03", "host", "workload.mlp"): ("failed", "passed"),
    }
    regressions = {(c.host, c.check_id) for c in changes if c.regression}
    assert regressions == {("synthetic-ws01", "gpu.ecc"), ("synthetic-ws02", "host")}
    text = format_diff(changes, OLD_RUN, NEW_RUN)
    assert "3 changes" in text and "(2 regressions)" in text
    assert "! synthetic-ws01.gpu1 gpu.ecc: passed → failed" in text


def test_same_run_has_no_changes(reports: Path) -> None:
    fleet = load_fleet(reports / NEW_RUN)
    assert diff_fleets(fleet, fleet) == []
    assert "no check changed state" in format_diff([], "a", "b")


def test_resolve_run_by_id_latest_and_newest(reports: Path) -> None:
    assert list_runs(reports) == [OLD_RUN, NEW_RUN]
    assert resolve_run(reports).name == NEW_RUN
    update_latest(reports, reports / OLD_RUN)
    assert resolve_run(reports).name == OLD_RUN
    assert resolve_run(reports, NEW_RUN).name == NEW_RUN
    with pytest.raises(FileNotFoundError, match="latest runs: 20261120T090000Z"):
        resolve_run(reports, "20250101T000000Z")


def test_report_rerenders_an_older_run_without_moving_latest(reports: Path, capsys) -> None:
    update_latest(reports, reports / NEW_RUN)
    assert main(["report", "--reports-dir", str(reports), "--run", OLD_RUN, "--width", "90"]) == 0
    assert (reports / OLD_RUN / "fleet.html").is_file()
    assert resolve_run(reports).name == NEW_RUN
    assert "FLEET FAILED: 3 hosts: 2 ok, 1 failed" in capsys.readouterr().out


def test_diff_command(reports: Path, capsys) -> None:
    args = ["diff", OLD_RUN, NEW_RUN, "--reports-dir", str(reports)]
    assert main(args) == 0
    assert "synthetic-ws02: ok → unreachable" in capsys.readouterr().out
    assert main([*args, "--fail-on-regression"]) == 1
    assert main(["diff", NEW_RUN, "nope", "--reports-dir", str(reports)]) == 2


def test_fleet_json_of_another_schema_is_rebuilt(reports: Path) -> None:
    (reports / NEW_RUN / "fleet.json").write_text('{"schema": "labrig.fleet/0", "hosts": []}')
    assert [h["host"] for h in load_fleet(reports / NEW_RUN)["hosts"]] == [
        "synthetic-ws01",
        "synthetic-ws02",
        "synthetic-ws03",
    ]
