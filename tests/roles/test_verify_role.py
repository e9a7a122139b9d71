"""The verify role's interface: every default is declared, typed and documented; and a fleet
where no host answers still gets its report."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml
from role_support import BIN, REPO, ROLES

ROLE = ROLES / "verify"


def load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def test_every_default_is_in_the_argument_spec_and_the_readme() -> None:
    defaults = set(load("defaults/main.yml"))
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    documented = set(re.findall(r"^### `(\w+)`$", (ROLE / "README.md").read_text(), re.M))
    assert defaults - set(options) == set()
    assert defaults - documented == set()
    # Shared variables read by the role are declared too, without a default of their own here.
    assert set(options) - defaults == {"labrig_wheelhouse"}
    assert documented == set(options)


def test_spec_types_match_the_defaults() -> None:
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    python_types = {"bool": bool, "int": int, "float": float, "dict": dict, "list": list}
    for name, value in defaults.items():
        expected = python_types.get(options[name]["type"])
        if expected and not (isinstance(value, str) and "{{" in value):
            assert isinstance(value, expected), name


def test_a_fleet_where_no_host_answers_still_gets_its_report(tmp_path: Path) -> None:
    # Port 9 on loopback: nothing listens, so SSH is refused at once.
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ghost ansible_host=127.0.0.1 ansible_port=9 ansible_user=nobody\n")
    reports = tmp_path / "reports"
    result = subprocess.run(
        [
            BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / "verify.yml",
            "-e", f"verify_reports_dir={reports}",
        ],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )  # fmt: skip

    # The play fails at its end (a host not fit for work), after writing the report.
    assert result.returncode == 2, result.stdout[-3000:]
    report = json.loads((reports / "latest" / "ghost.json").read_text())
    assert report["unreachable"] is True and report["exit_code"] == 2
    assert "connect" in report["suite_error"], report["suite_error"]
    assert (reports / "latest" / "fleet.html").is_file()
