"""A rooted workstation is one workstation: what it answers never becomes the controller's own
variables or paths (issue: a compromised workstation stays one workstation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from role_support import BIN, REPO

HOSTILE = REPO / "tests" / "fixtures" / "hostile"


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
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env |= {
        # The project's own configuration, as `make provision` and `make verify` run with it.
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LIBRARY": str(HOSTILE / "library"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_HOME": str(tmp_path / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-local"),
    }
    done = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            *("-i", "ws01,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"),
            str(playbook),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{\n") :])
    seen = json.loads(report["plays"][0]["tasks"][-1]["hosts"]["ws01"]["msg"])
    assert seen["wheelhouse"] == "/srv/labrig/wheels", seen
    assert seen["globs"] == "unset", seen
    # Still what the host said about itself, under ansible_facts: a fact, never a variable.
    assert seen["fact"] == "/root/.ssh", seen
