"""apt_sources waits only for real apt or dpkg work: a held package-system lock, never a process
name. Run through Ansible on this machine with the lock files under tmp_path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from role_support import run_tasks


def _busy(locks: list[Path], timeout: int) -> dict:
    return {
        "name": "apt_sources busy",
        "ansible.builtin.include_role": {"name": "apt_sources", "tasks_from": "busy.yml"},
        "vars": {
            "__apt_sources_package_locks": [str(path) for path in locks],
            "apt_sources_busy_timeout": timeout,
        },
    }


HOLD_LOCK = (
    "import fcntl, sys, time\n"
    "held = open(sys.argv[1], 'w')\n"
    "fcntl.lockf(held, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@pytest.fixture()
def locks(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "dpkg" / "lock-frontend", tmp_path / "dpkg" / "lock"]
    paths[0].parent.mkdir()
    for path in paths:
        path.write_text("")
    return paths


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_the_unattended_upgrades_shutdown_waiter_is_not_apt_at_work(
    tmp_path: Path, locks: list[Path]
) -> None:
    # unattended-upgrades.service runs `unattended-upgrade-shutdown --wait-for-signal` as long as
    # the host is up; the kernel names that process `unattended-upgr` (15 characters).
    waiter = tmp_path / "unattended-upgrade-shutdown"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", waiter)
    process = subprocess.Popen([str(waiter), "120"])
    try:
        deadline = time.monotonic() + 10
        while (comm := Path(f"/proc/{process.pid}/comm").read_text().strip()) != (
            "unattended-upgr"
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert comm == "unattended-upgr", comm
        started = time.monotonic()

        run = run_tasks(tmp_path / "run", [_busy(locks, 600)], {"ws": {}})

        assert run.failure("ws") is None, run.stdout[-3000:]
        assert time.monotonic() - started < 60, "it waited for the shutdown waiter"
    finally:
        process.kill()
        process.wait()


def test_a_held_dpkg_lock_is_waited_for_and_named(tmp_path: Path, locks: list[Path]) -> None:
    holder = _hold(locks[1], 60)
    try:
        run = run_tasks(tmp_path / "run", [_busy(locks, 10)], {"ws": {}})
    finally:
        holder.kill()
        holder.wait()

    failure = run.failure("ws")
    assert failure is not None, run.stdout[-3000:]
    assert f"{locks[1]} {holder.pid} " in failure.get("stdout", ""), failure
    assert failure.get("attempts", 0) >= 2, failure


def test_work_that_ends_while_waited_for_lets_the_run_go_on(
    tmp_path: Path, locks: list[Path]
) -> None:
    holder = _hold(locks[0], 6)
    try:
        run = run_tasks(tmp_path / "run", [_busy(locks, 60)], {"ws": {}})
    finally:
        holder.kill()
        holder.wait()

    assert run.failure("ws") is None, run.stdout[-3000:]
    attempts = run.result("ws", "apt_sources : Wait for an apt or dpkg already running on the host")
    assert attempts.get("attempts", 1) >= 2, attempts
