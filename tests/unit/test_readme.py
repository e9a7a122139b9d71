"""The README is a front door: short, its Layout naming every top-level entry of the checkout, and
its command list the `labrig` command's own (scripts/cli_reference.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_reads_in_five_minutes() -> None:
    assert len(README.splitlines()) <= 150


def test_the_layout_names_every_top_level_entry_of_the_checkout() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    top = {path.split("/", 1)[0] for path in tracked}
    layout = README.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"[\w.-]+", layout))
    missing = sorted(entry for entry in top if entry not in named)
    assert not missing, f"the README's Layout omits {missing}"


def test_the_command_reference_is_current() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
