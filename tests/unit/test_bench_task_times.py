"""benchmarks/task_times.py: a provision log's first run split into the install tasks, the other
host tasks and the rest, from profile_tasks' stamps (each stamp is the time of the task before)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import task_times


def _stamp(seconds: float) -> str:
    stamp = f"(0:00:{seconds:06.3f})       0:00:01.000"
    return f"Tuesday 01 December 2026  16:21:35 +0000 {stamp} ******"


LOG = "\n".join(
    [
        "PLAY [Preflight] ******",
        "TASK [labrig : Take the run lock /run/labrig/provision.lock] *******************",
        _stamp(0.018),
        "ok: [node1]",
        "TASK [apt_sources : Download package lists (a source was added, or none were ever"
        " downloaded)] ***",
        _stamp(0.320),
        "changed: [node1]",
        "TASK [nouveau : Write the nouveau blacklist] ***",
        _stamp(2.070),
        "skipping: [node1]",
        "TASK [mkl : Install the BLAS packages] ***",
        _stamp(0.010),
        "changed: [node1]",
        "TASK [mxnet : Install the Python virtualenv tooling and MXNet's runtime libraries] ***",
        _stamp(2.240),
        "changed: [node1]",
        "RUNNING HANDLER [labrig : Install with the sha256 of every file checked the set"
        " mxnet] ***",
        _stamp(5.750),
        "changed: [node1]",
        "TASK [labrig : Release the lock] ***",
        _stamp(5.620),
        "ok: [node1]",
        "PLAY RECAP ***",
        "node1 : ok=5",
        "TASK [mkl : Install the BLAS packages] ***",
        _stamp(9.0),
    ]
)


def test_each_stamp_is_the_time_of_the_task_before_it_and_the_first_run_ends_at_its_recap():
    times = task_times.task_times(LOG)
    assert times == [
        ("labrig : Take the run lock /run/labrig/provision.lock", 0.32),
        (
            "apt_sources : Download package lists (a source was added, or none were ever "
            "downloaded)",
            2.07,
        ),
        ("nouveau : Write the nouveau blacklist", 0.01),
        ("mkl : Install the BLAS packages", 2.24),
        ("mxnet : Install the Python virtualenv tooling and MXNet's runtime libraries", 5.75),
        ("labrig : Install with the sha256 of every file checked the set mxnet", 5.62),
    ]


def test_the_install_tasks_are_told_apart_from_other_host_tasks_and_the_rest():
    parts = task_times.breakdown(task_times.task_times(LOG))
    assert parts["plain work"][0] == 4
    assert round(parts["plain work"][1], 2) == 15.68
    assert parts["other host tasks"] == (1, 0.32)
    assert parts["the rest"] == (1, 0.01)


def test_the_printout_names_the_multiple_of_the_plain_install(tmp_path, capsys):
    log = tmp_path / "fleet-1.log"
    log.write_text(LOG)
    assert task_times.main([str(log), "--plain", "12.0"]) == 0
    assert capsys.readouterr().out == (
        "  of the first run: the 4 install tasks 15.7 s = 1.31 x plain; 1 other tasks on the host"
        " 0.3 s; 1 controller-only or skipped tasks 0.0 s\n"
    )


def test_a_log_without_the_install_tasks_is_an_error(tmp_path, capsys):
    log = tmp_path / "smoke.log"
    log.write_text("\n".join([*LOG.splitlines()[:4], "PLAY RECAP ***"]))
    assert task_times.main([str(log)]) == 1
    assert "found 0 of the 4 install tasks" in capsys.readouterr().err


def test_with_the_wall_time_the_run_less_its_other_host_tasks_is_a_multiple_of_plain(
    tmp_path, capsys
):
    log = tmp_path / "fleet-1.log"
    log.write_text(LOG)
    assert task_times.main([str(log), "--plain", "12.0", "--wall", "18.32"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "  the run less its 1 other host tasks: 18.0 s = 1.50 x plain (the install tasks, the"
        " controller-only tasks and ansible-playbook's start)"
    )
