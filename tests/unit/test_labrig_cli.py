"""The `labrig` command and the make targets that are its aliases: every value is checked before
anything runs, hosts are resolved with Ansible's inventory API, and ansible-playbook gets an
argument list that no shell ever reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labrig import cli
from labrig.inventory import unknown_patterns

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


def labrig(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labrig", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def make(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    # Variables on make's command line, as an operator types them.
    assignments = [f"{name}={value}" for name, value in variables.items()]
    env = {key: value for key, value in os.environ.items() if key not in cli.MAKE_VARIABLES}
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args, *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def test_unknown_host_fails_at_once_and_lists_the_known_hosts(inventory: Path) -> None:
    result = labrig("provision", "-i", str(inventory), "--host", "nosuchhost", "--dry-run")
    assert result.returncode == 2
    assert f"--host nosuchhost is not a host or group in {inventory}" in result.stderr
    assert "known hosts: ws01 ws02 ws03" in result.stderr
    # Named once: Ansible's own warning for the pattern is not shown beside it.
    assert (result.stdout + result.stderr).count("nosuchhost") == 1, result.stderr


def test_one_unknown_name_in_a_list_is_enough_to_refuse(inventory: Path) -> None:
    result = make("provision", INVENTORY=str(inventory), HOST="ws01,ws09", DRY_RUN="1")
    assert result.returncode == 2
    assert "error: HOST=ws09 is not a host or group" in result.stderr


def test_hosts_groups_and_exclusions_are_accepted(inventory: Path) -> None:
    result = labrig("check", "-i", str(inventory), "-l", "ws01,gpu_hopper:!ws03", "-n")
    assert result.returncode == 0, result.stderr
    assert "--limit 'ws01,gpu_hopper:!ws03'" in result.stdout


def test_pattern_parts_are_checked_one_by_one() -> None:
    known = {"ws01": ["ws01"], "gpu": ["ws02"]}
    assert unknown_patterns("ws01,gpu:!ws02:&gpu", lambda p: known.get(p, [])) == []
    assert unknown_patterns("ws01:nope,also", lambda p: known.get(p, [])) == ["nope", "also"]


def test_missing_inventory_names_the_fix(tmp_path: Path) -> None:
    result = make("provision", INVENTORY=str(tmp_path / "nope"), HOST="ws01")
    assert result.returncode == 2
    assert "copy inventory.example to inventory, or pass INVENTORY=path" in result.stderr


@pytest.mark.parametrize(
    ("variables", "passed"),
    [
        ({"BATCH": "1"}, "-e labrig_batch=1"),
        ({"BATCH": "25%"}, "-e labrig_batch=25%"),
        (
            {"BATCH": "1,25%,100%", "MAX_FAIL": "0"},
            "-e labrig_batch=1,25%,100% -e labrig_max_fail=0",
        ),
        ({"FULL": "1"}, "-e labrig_fast_path=false"),
        ({"ARGS": "--tags nvidia_driver -e 'a=b c'"}, "--tags nvidia_driver -e 'a=b c'"),
    ],
)
def test_make_provision_passes_its_variables_as_arguments(
    inventory: Path, variables: dict[str, str], passed: str
) -> None:
    result = make("provision", INVENTORY=str(inventory), DRY_RUN="1", **variables)

    assert result.returncode == 0, result.stderr
    assert "provision.yml" in result.stdout and passed in result.stdout, result.stdout


def test_a_plain_provision_keeps_the_converged_fast_path(inventory: Path) -> None:
    result = labrig("provision", "-i", str(inventory), "-n")
    assert result.returncode == 0, result.stderr
    assert "labrig_fast_path" not in result.stdout


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"BATCH": "0"}, "BATCH=0"),
        ({"BATCH": "some"}, "BATCH=some"),
        ({"MAX_FAIL": "101"}, "MAX_FAIL=101"),
        ({"FRAMEWORK": "tensorflow"}, "FRAMEWORK"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_variable(
    inventory: Path, variables: dict[str, str], named: str
) -> None:
    target = "verify" if "FRAMEWORK" in variables else "provision"
    result = make(target, INVENTORY=str(inventory), DRY_RUN="1", **variables)
    assert result.returncode == 2
    assert named in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HOST", "ws01';touch {canary};'"),
        ("HOST", "$(touch {canary})"),
        ("INVENTORY", '{inventory}"; touch {canary}; "'),
        ("ARGS", "-e a=1; touch {canary}"),
        ("ARGS", "-e a=1 | touch {canary}"),
        ("ARGS", "-e a=1\ntouch {canary}"),
        ("FRAMEWORK", "torch`touch {canary}`"),
        ("BATCH", "1;touch {canary}"),
        ("MAX_FAIL", "0'; touch {canary}; '"),
        ("RUN", "latest$(touch {canary})"),
    ],
)
def test_no_value_ever_reaches_a_shell(
    inventory: Path, tmp_path: Path, variable: str, value: str
) -> None:
    canary = tmp_path / "ran"
    values = {"INVENTORY": str(inventory), "DRY_RUN": "1"}
    values[variable] = value.format(canary=canary, inventory=inventory)
    target = "report" if variable == "RUN" else "provision"

    result = make(target, **values)

    assert not canary.exists(), result.stdout + result.stderr


def test_ansible_args_are_words_of_one_argument_each(inventory: Path, tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    result = labrig(
        "verify", "-i", str(inventory), f"--ansible-args=-e 'x=1|touch {planted}'", "-n"
    )
    assert result.returncode == 0, result.stderr
    assert f"-e 'x=1|touch {planted}'" in result.stdout
    assert not planted.exists()


def test_burn_in_needs_a_positive_number_of_minutes(inventory: Path) -> None:
    for bad in ("0", "-1", "x", "nan"):
        result = make("burn-in", INVENTORY=str(inventory), MINUTES=bad, DRY_RUN="1")
        assert result.returncode == 2, bad
        assert f"MINUTES={bad}: give the burn-in's length in minutes" in result.stderr, bad
    result = make("burn-in", INVENTORY=str(inventory), MINUTES="0.5", DCGM_LEVEL="3", DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert "-e verify_burn_in_minutes=0.5 -e verify_dcgm_level=3" in result.stdout


def test_trend_through_make_needs_the_host() -> None:
    result = make("trend")
    assert result.returncode == 2
    assert "HOST=<a host of the stored runs> is required" in result.stderr


def test_every_command_has_complete_help() -> None:
    parser = cli.build_parser()
    commands = cli._subparsers(parser)
    assert set(commands) == set(cli.COMMANDS)
    for name, sub in commands.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"labrig {name}: {action.dest} has no help"


def test_frameworks_are_the_suites() -> None:
    from verify.frameworks import FRAMEWORKS

    assert tuple(cli.FRAMEWORKS) == tuple(FRAMEWORKS)


def test_the_makefile_stays_a_page_of_aliases() -> None:
    assert len((ROOT / "Makefile").read_text().splitlines()) <= 60
