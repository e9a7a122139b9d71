"""The terminal summary: a line per host and per GPU, cut to the terminal width."""

from __future__ import annotations

from pathlib import Path

from test_fleet_fixtures import NEW_RUN, big_fleet, copy_run

from verify.fleet.merge import build_fleet
from verify.fleet.summary import cut, render_summary


def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_three_host_summary_rows_and_totals(tmp_path: Path) -> None:
    fleet = build_fleet(copy_run(NEW_RUN, tmp_path))
    lines = lines_of(render_summary(fleet, width=140))
    rows = {line.split()[0]: line for line in lines[2:7]}
    assert list(rows) == ["synthetic-ws01", "gpu0", "gpu1", "synthetic-ws02", "synthetic-ws03"]
    assert rows["synthetic-ws01"].split()[1:5] == ["FAILED", "50", "1", "6"]
    assert "535.216.03" in rows["synthetic-ws01"] and "12.2" in rows["synthetic-ws01"]
    assert rows["gpu1"].split()[1:5] == ["FAILED", "19", "1", "3"]
    assert "gpu.ecc: 3 volatile uncorrected ECC error(s)" in rows["gpu1"]
    assert "1.000" in rows["gpu0"] and "1.62" in rows["gpu0"]
    assert (
        rows["synthetic-ws02"].split()[1] == "UNREACH"
        and "Failed to connect" in rows["synthetic-ws02"]
    )
    assert "no GPU" in rows["synthetic-ws03"] and "3.10" in rows["synthetic-ws03"]
    assert "FLEET FAILED: 3 hosts: 1 ok, 1 failed, 1 unreachable, 0 suite not run" in lines
    assert any("2 GPUs, 1 failing" in line for line in lines)


def test_every_line_fits_the_width(tmp_path: Path) -> None:
    fleet = build_fleet(copy_run(NEW_RUN, tmp_path))
    for width in (80, 100, 200):
        assert max(len(line) for line in lines_of(render_summary(fleet, width=width))) <= width


def test_big_fleet_folds_passing_gpus_and_keeps_failing_ones(tmp_path: Path) -> None:
    expected = big_fleet(tmp_path / "run", hosts=60, gpus=8)
    fleet = build_fleet(tmp_path / "run")
    text = render_summary(fleet, width=120)
    lines = lines_of(text)
    # 60 host lines + one line per failing GPU (hosts 10..60 step 10, minus 50 which is
    # unreachable) + header, rules, fold note, slow line and totals: not 540 lines.
    assert len(lines) < 60 + 10 + 12
    assert "passing GPU rows folded" in text
    assert sum(1 for line in lines if line.split()[:2] == [f"gpu{10 % 8}", "FAILED"]) == 1
    assert any(line.startswith("slow vs GeForce") or "node007 gpu3" in line for line in lines)
    assert all(any(line.startswith(host) for line in lines) for host in expected["unreachable"])
    everything = lines_of(render_summary(fleet, width=120, gpu_rows="all"))
    assert len(everything) > 60 * 8


def test_cut_keeps_indent_and_marks_the_cut() -> None:
    assert cut("  gpu0", 10) == "  gpu0"
    assert cut("a reason\nwith lines", 12) == "a reason wi…"
    assert cut("anything", 0) == ""


def test_eighty_columns_drop_whole_columns_and_keep_the_first_failure(tmp_path: Path) -> None:
    fleet = build_fleet(copy_run(NEW_RUN, tmp_path))
    header, *_ = lines_of(render_summary(fleet, width=80))

    assert header.split() == [
        "HOST",
        "/",
        "GPU",
        "STATE",
        "PASS",
        "FAIL",
        "GPU",
        "MODEL",
        "MLP",
        "ACC",
        "FIRST",
        "FAILURE",
    ]
    wide_header, *_ = lines_of(render_summary(fleet, width=160))
    assert "DRIVER" in wide_header and "MLP s" in wide_header
