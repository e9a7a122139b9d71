"""apt_sources' files/apt_update.py: a download of the lists that runs past its time is killed with
every process it started, so nothing is left to hold apt's lock. Run with a stand-in apt-get on
PATH that starts a download method which never answers, as a hung mirror leaves apt's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "apt_sources" / "files" / "apt_update.py"


def _stand_in_apt_get(bin_dir: Path, body: str) -> dict[str, str]:
    bin_dir.mkdir()
    apt_get = bin_dir / "apt-get"
    apt_get.write_text("#!/bin/sh\n" + body)
    apt_get.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_hung_download_is_killed_with_its_method(tmp_path: Path) -> None:
    method_pid = tmp_path / "method.pid"
    # The "method" is a grandchild, as apt's are: the kill must reach the whole group.
    env = _stand_in_apt_get(
        tmp_path / "bin", f"sh -c 'echo $$ > {method_pid}; exec sleep 300' &\nwait\n"
    )
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "2"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 124, run
    assert "apt-get update: timeout exceeded after 2 s" in run.stderr, run
    assert time.monotonic() - started < 30
    pid = int(method_pid.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), f"the download method {pid} outlived the kill"


def test_apt_gets_own_failure_and_words_pass_through(tmp_path: Path) -> None:
    env = _stand_in_apt_get(
        tmp_path / "bin",
        'echo "$@"\necho "E: Failed to fetch http://mirror.invalid/InRelease" >&2\nexit 100\n',
    )
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "30"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 100, run
    assert "Failed to fetch" in run.stderr, run
    # A list that could not be fetched fails the update instead of being a warning.
    assert "update -q --error-on=any" in run.stdout, run
    assert "refreshed" not in run.stdout, run


def test_a_finished_download_says_refreshed(tmp_path: Path) -> None:
    env = _stand_in_apt_get(tmp_path / "bin", "exit 0\n")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "30"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run
    assert run.stdout.strip().endswith("refreshed"), run
