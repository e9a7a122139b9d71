"""A rooted workstation is one workstation: what it answers never becomes the controller's own
variables or paths (issue: a compromised workstation stays one workstation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from role_support import BIN, REPO

HOSTILE = REPO / "tests" / "fixtures" / "hostile"


def _json_run(tmp_path: Path, args: list[str], **env: str) -> tuple[int, str, dict]:
    """ansible-playbook ARGS with the JSON callback and Ansible's own files under tmp_path:
    (exit code, stdout, the JSON document)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    clean |= {
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_HOME": str(tmp_path / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-local"),
        **env,
    }
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    start = done.stdout.find("{\n")
    assert start >= 0, done.stdout[-3000:] + done.stderr[-3000:]
    report, _ = json.JSONDecoder().raw_decode(done.stdout[start:])
    return done.returncode, done.stdout, report


def test_facts_a_host_reports_never_become_the_controllers_variables(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(
        "- hosts: all\n"
        "  gather_facts: false\n"
        "  vars:\n"
        "    labrig_wheelhouse: /srv/labrig/wheels\n"
        "  tasks:\n"
        "    - name: A module whose answer carries forged facts\n"
        "      forged_facts:\n"
        "    - name: Report\n"
        "      ansible.builtin.debug:\n"
        "        msg: \"{{ {'wheelhouse': labrig_wheelhouse,"
        " 'globs': verify_wheelhouse_globs | default('unset'),"
        " 'fact': ansible_facts.labrig_wheelhouse | default('')} | to_json }}\"\n"
    )
    returncode, stdout, report = _json_run(
        tmp_path,
        ["-i", "ws01,", "-c", "local", str(playbook)],
        # The project's own configuration, as `make provision` and `make verify` run with it.
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LIBRARY=str(HOSTILE / "library"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    assert returncode == 0, stdout[-3000:]
    seen = json.loads(report["plays"][0]["tasks"][-1]["hosts"]["ws01"]["msg"])
    assert seen["wheelhouse"] == "/srv/labrig/wheels", seen
    assert seen["globs"] == "unset", seen
    # Still what the host said about itself, under ansible_facts: a fact, never a variable.
    assert seen["fact"] == "/root/.ssh", seen


def test_the_suite_never_runs_as_root_whatever_the_inventory_says(tmp_path: Path) -> None:
    """An inventory's ansible_become=true beats a play's `become: false`: the verify role's run
    and burn-in imports carry ansible_become: false, which wins over it."""
    host_tasks = yaml.safe_load((REPO / "roles/verify/tasks/host.yml").read_text())
    runs = [
        t for t in host_tasks if t.get("ansible.builtin.import_tasks") in ("run.yml", "burn_in.yml")
    ]
    assert len(runs) == 2 and all(t.get("vars", {}).get("ansible_become") is False for t in runs)

    # The same shape, run: become to `nobody` through su (this test runs as root, or skips).
    # The system's Python: `nobody` can run it (not a Python under root's home).
    if os.geteuid() != 0 or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root and /usr/bin/python3 to become another user without a password")
    (tmp_path / "run.yml").write_text(
        "- name: Who runs the suite\n  ansible.builtin.command: id -un\n  register: who\n"
        "- name: Report\n  ansible.builtin.debug:\n    msg: '{{ who.stdout }}'\n"
    )
    (tmp_path / "playbook.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  become: false\n  tasks:\n"
        "    - name: As the role imports it\n      ansible.builtin.import_tasks: run.yml\n"
        "      vars:\n        ansible_become: false\n"
        "    - name: Without the variable\n      ansible.builtin.import_tasks: run.yml\n"
    )
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "ws01 ansible_connection=local ansible_become=true ansible_become_method=su"
        " ansible_become_user=nobody ansible_become_flags='-s /bin/sh'"
        " ansible_python_interpreter=/usr/bin/python3\n"
    )
    # Modules over stdin: no temporary file the unprivileged user would have to read.
    _, stdout, report = _json_run(
        tmp_path, ["-i", str(inventory), str(tmp_path / "playbook.yml")], ANSIBLE_PIPELINING="1"
    )
    said = [
        task["hosts"]["ws01"].get("msg")
        for task in report["plays"][0]["tasks"]
        if task["task"]["name"] == "Report"
    ]
    assert said == ["root", "nobody"], (said, stdout[-3000:])
