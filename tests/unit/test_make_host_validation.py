"""`make provision HOST=…` refuses an unknown host before Ansible touches anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INVENTORY = """\
[gpu_ampere]
ws01 ansible_host=127.0.0.1
ws02 ansible_host=127.0.0.1

[gpu_hopper]
ws03 ansible_host=127.0.0.1
"""


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.ini"
    path.write_text(INVENTORY)
    return path


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_unknown_host_fails_at_once_and_lists_the_known_hosts(inventory: Path) -> None:
    result = make("_inventory", f"INVENTORY={inventory}", "HOST=nosuchhost")
    assert result.returncode == 2
    assert "HOST=nosuchhost is not a host or group" in result.stderr
    assert "known hosts: ws01 ws02 ws03" in result.stderr


def test_one_unknown_name_in_a_list_is_enough_to_refuse(inventory: Path) -> None:
    result = make("_inventory", f"INVENTORY={inventory}", "HOST=ws01,ws09")
    assert result.returncode == 2
    assert "HOST=ws09" in result.stderr


def test_hosts_and_groups_are_accepted(inventory: Path) -> None:
    result = make("_inventory", f"INVENTORY={inventory}", "HOST=ws01,gpu_hopper")
    assert result.returncode == 0, result.stderr


def test_missing_inventory_names_the_fix(tmp_path: Path) -> None:
    result = make("_inventory", f"INVENTORY={tmp_path / 'nope'}", "HOST=ws01")
    assert result.returncode == 2
    assert "copy inventory.example to inventory" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("HOST", "ws01';touch {canary};'", "'"),
        ("HOST", "$(shell touch {canary})", "$"),
        ("INVENTORY", 'inv"; touch {canary}; "', '"'),
        ("ARGS", "-e a=1; touch {canary}", ";"),
        ("ARGS", "-e a=1 | touch {canary}", "|"),
        ("ARGS", "-e a=1\ntouch {canary}", "a newline"),
        ("FRAMEWORK", "torch`touch {canary}`", "`"),
        ("RUN", "latest$(touch {canary})", "$"),
        ("CPU_ONLY", "1;touch {canary}", ";"),
    ],
)
def test_a_value_that_could_run_shell_code_is_refused(
    tmp_path: Path, variable: str, value: str, shown: str
) -> None:
    canary = tmp_path / "ran"
    result = make("-n", "verify", "_inventory", f"{variable}={value.format(canary=canary)}")

    assert result.returncode == 2
    assert f"{variable}: a value with {shown} is refused" in result.stderr, result.stderr
    assert not canary.exists()


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("BATCH", "1;touch {canary}", ";"),
        ("BATCH", "25%$(touch {canary})", "$"),
        ("MAX_FAIL", "0'; touch {canary}; '", "'"),
        ("MAX_FAIL", "10\ntouch {canary}", "a newline"),
        ("FULL", "1;touch {canary}", ";"),
    ],
)
def test_a_rollout_value_that_could_run_shell_code_is_refused(
    tmp_path: Path, variable: str, value: str, shown: str
) -> None:
    canary = tmp_path / "ran"
    result = make("-n", "provision", f"{variable}={value.format(canary=canary)}")

    assert result.returncode == 2
    assert f"{variable}: a value with {shown} is refused" in result.stderr, result.stderr
    assert not canary.exists()


@pytest.mark.parametrize(
    ("assignments", "passed"),
    [
        (["BATCH=1"], "-e 'labrig_batch=1'"),
        (["BATCH=25%"], "-e 'labrig_batch=25%'"),
        (["BATCH=1,25%,100%", "MAX_FAIL=0"], "-e 'labrig_batch=1,25%,100%' -e 'labrig_max_fail=0'"),
        (["FULL=1"], "-e labrig_fast_path=false"),
    ],
)
def test_a_rollout_runs_the_hosts_in_batches(
    inventory: Path, assignments: list[str], passed: str
) -> None:
    result = make("-n", "provision", f"INVENTORY={inventory}", *assignments)

    assert result.returncode == 0, result.stderr
    playbook_line = next(line for line in result.stdout.splitlines() if "provision.yml" in line)
    assert passed in playbook_line, playbook_line


def test_a_plain_provision_keeps_the_converged_fast_path(inventory: Path) -> None:
    result = make("-n", "provision", f"INVENTORY={inventory}")

    assert result.returncode == 0, result.stderr
    assert "labrig_fast_path" not in result.stdout


@pytest.mark.parametrize(
    ("assignment", "named"),
    [("BATCH=0", "BATCH=0"), ("BATCH=some", "BATCH=some"), ("MAX_FAIL=101", "MAX_FAIL=101")],
)
def test_a_rollout_value_that_is_not_a_count_is_refused(
    inventory: Path, assignment: str, named: str
) -> None:
    result = make("provision", f"INVENTORY={inventory}", assignment)

    assert result.returncode == 2
    assert f"error: {named}:" in result.stderr, result.stderr


def test_the_framework_reaches_ansible_as_one_quoted_word(inventory: Path, tmp_path: Path) -> None:
    # A pipe is no quote or `;`, so the guard lets it through: only quoting keeps it a value.
    planted = tmp_path / "planted"
    result = make("-n", "verify", f"INVENTORY={inventory}", f"FRAMEWORK=x|touch {planted}")

    assert result.returncode == 0, result.stderr
    playbook_line = next(line for line in result.stdout.splitlines() if "verify.yml" in line)
    assert f"-e 'verify_framework=x|touch {planted}'" in playbook_line, playbook_line
    # The line as make would run it, with `true` in ansible-playbook's place.
    ran = subprocess.run(["bash", "-c", "true " + playbook_line.split(" ", 1)[1]], check=False)
    assert ran.returncode == 0 and not planted.exists()
