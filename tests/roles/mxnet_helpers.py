"""Run the mxnet role's task files through a real ansible-playbook on localhost, and read the
config.mk it renders the way make reads it."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
CONTROLLER_PYTHON = sys.executable


@dataclass
class PlaybookRun:
    returncode: int
    report: dict  # the ansible.posix.json callback's document
    stderr: str

    @property
    def stats(self) -> dict:
        return self.report.get("stats", {})

    def host_results(self, host: str) -> list[tuple[str, dict]]:
        """(task name, result) for every task that ran on host, in order."""
        found = []
        for play in self.report.get("plays", []):
            for task in play["tasks"]:
                if host in task["hosts"]:
                    found.append((task["task"]["name"], task["hosts"][host]))
        return found

    def failure(self, host: str) -> dict | None:
        failed = [result for _, result in self.host_results(host) if result.get("failed")]
        return failed[-1] if failed else None

    def fact(self, host: str, name: str):
        value = None
        for _, result in self.host_results(host):
            value = result.get("ansible_facts", {}).get(name, value)
        return value


def local_inventory(hosts: dict[str, dict]) -> dict:
    """An inventory of local-connection hosts, each with its own variables."""
    return {
        "all": {
            "hosts": hosts,
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": CONTROLLER_PYTHON,
            },
        }
    }


def run_playbook(
    workdir: Path, plays: list[dict], inventory: dict | Path, *args: str, timeout: int = 120
) -> PlaybookRun:
    """Write plays (and inventory, when given as a dict) under workdir and run ansible-playbook
    with the JSON callback; an inventory Path (a real fleet's) is used as it is.

    Every file Ansible itself writes on the controller (temp files) stays under workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "playbook.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    if isinstance(inventory, dict):
        (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
        inventory = workdir / "inventory.yml"
    local = inventory == workdir / "inventory.yml"
    # On localhost the "remote" side is this machine too: keep its temp and async files here.
    remote_tmp = f"remote_tmp = {workdir}/.ansible-remote\n" if local else ""
    (workdir / "ansible.cfg").write_text(
        "[defaults]\n"
        f"roles_path = {ROLES}\n"
        "stdout_callback = ansible.posix.json\n"
        "retry_files_enabled = False\n"
        "forks = 10\n"
        "host_key_checking = True\n"
        f"local_tmp = {workdir}/.ansible-local\n"
        f"{remote_tmp}"
        # Modules fed over stdin: no temp files, half the processes per task.
        "[connection]\npipelining = True\n"
        "[ssh_connection]\npipelining = True\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(workdir / "ansible.cfg"),
        "ANSIBLE_HOME": str(workdir / ".ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    if local:
        env["ANSIBLE_ASYNC_DIR"] = str(workdir / ".ansible-async")
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "playbook.yml", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    start = completed.stdout.find("{")
    if start < 0:
        raise AssertionError(
            f"no JSON from ansible-playbook:\n{completed.stdout}\n{completed.stderr}"
        )
    report = json.loads(completed.stdout[start:])
    # Kept beside the playbook: the first place to look when a run fails.
    (workdir / "report.json").write_text(json.dumps(report, indent=1))
    return PlaybookRun(completed.returncode, report, completed.stderr)


def load_stand_in_generator():
    """tests/fleet/stand_in_mxnet/make_stand_in.py as a module (tests/ is not a package)."""
    name = "labrig_stand_in_mxnet"
    if name not in sys.modules:
        path = REPO / "tests" / "fleet" / "stand_in_mxnet" / "make_stand_in.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_ORIGIN = re.compile(r"^# makefile \(from '(?P<file>[^']+)', line \d+\)$")
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*) (?::=|=|::=) ?(?P<value>.*)$")


def make_variables(config_mk: Path) -> dict[str, str]:
    """The variables config_mk defines, as GNU make's database (`make -p`) holds them after
    reading it: a dummy target is asked for with -n, so nothing is run."""
    wrapper = config_mk.parent / "print-database.mk"
    wrapper.write_text(f"include {config_mk}\nlabrig-print-database:\n\t@:\n")
    completed = subprocess.run(
        ["make", "--no-builtin-rules", "-p", "-n", "-f", str(wrapper), "labrig-print-database"],
        cwd=config_mk.parent,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    variables: dict[str, str] = {}
    lines = completed.stdout.splitlines()
    for previous, line in itertools.pairwise(lines):
        origin = _ORIGIN.match(previous)
        if origin and origin["file"] == str(config_mk):
            assignment = _ASSIGNMENT.match(line)
            if assignment:
                variables[assignment["name"]] = assignment["value"].strip()
    return variables
