"""Helpers the role tests share: run throwaway playbooks through the real Ansible and read back
each host's results, and read a rendered config.mk the way make reads it.

Kept out of conftest.py so test modules can import them without clashing with
tests/fleet/conftest.py when pytest collects both folders in one run;
tests/fleet/test_mxnet_orchestration.py loads this file by path to run plays on a fleet host.
"""

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
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]  # the ansible.posix.json callback's document

    @property
    def stats(self) -> dict[str, Any]:
        return self.report.get("stats", {})

    def host_results(self, host: str) -> list[tuple[str, dict[str, Any]]]:
        """(task name, result) for every task that ran on `host`, in order."""
        found = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                result = task.get("hosts", {}).get(host)
                if result is not None:
                    found.append((task["task"]["name"], result))
        return found

    def failure(self, host: str) -> dict[str, Any] | None:
        """The result of the task that stopped `host` (of its failed item, for a loop), or None.

        The last failure, not the first: in check mode a task may fail and be ignored first."""
        failed = [
            result
            for _, result in self.host_results(host)
            if result.get("failed") and result.get("failed_when_result") is not False
        ]
        if not failed:
            return None
        items = [item for item in failed[-1].get("results", []) if item.get("failed")]
        return items[0] if items else failed[-1]

    def failure_message(self, host: str) -> str | None:
        failure = self.failure(host)
        return None if failure is None else str(failure.get("msg", ""))

    def result(self, host: str, task_name: str) -> dict[str, Any]:
        """The result of the last task called `task_name` on `host`."""
        found = [r for name, r in self.host_results(host) if name == task_name]
        assert found, f"task {task_name!r} did not run on {host}:\n{self.stdout[-3000:]}"
        return found[-1]

    def value(self, host: str, name: str) -> Any:
        """A variable published by `run_tasks`' final `Report` debug task."""
        return self.result(host, "Report")["msg"][name]

    def fact(self, host: str, name: str) -> Any:
        """The last value a task on `host` set for fact `name`."""
        value = None
        for _, result in self.host_results(host):
            value = result.get("ansible_facts", {}).get(name, value)
        return value


def local_inventory(hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An inventory of local-connection hosts, each with its own variables."""
    return {
        "all": {
            "hosts": hosts,
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }


def playbook_command(
    workdir: Path, plays: list[dict[str, Any]], inventory: dict[str, Any] | Path, *args: str
) -> tuple[list[str], dict[str, str]]:
    """Write `plays` (and a dict inventory) under workdir with this project's test ansible.cfg;
    return the ansible-playbook command and environment that run them there."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "playbook.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    if isinstance(inventory, dict):
        (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
        inventory = workdir / "inventory.yml"
    local = inventory == workdir / "inventory.yml"
    # On localhost the "remote" side is this machine too: keep its temp and async files here.
    remote_tmp = f"remote_tmp = {workdir}/.ansible-remote\n" if local else ""
    # Our own config, not the project's: its timing callback would mix text into the JSON.
    (workdir / "ansible.cfg").write_text(
        "[defaults]\n"
        f"roles_path = {ROLES}\n"
        "stdout_callback = ansible.posix.json\n"
        "retry_files_enabled = False\n"
        "deprecation_warnings = False\n"
        # As the project's ansible.cfg: facts a module reports are never variables.
        "inject_facts_as_vars = False\n"
        "forks = 10\n"
        "host_key_checking = True\n"
        f"local_tmp = {workdir}/.ansible-local\n"
        f"{remote_tmp}"
        # Modules fed over stdin: no temp files, half the processes per task.
        "[connection]\npipelining = True\n"
        "[ssh_connection]\npipelining = True\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env |= {
        "ANSIBLE_CONFIG": str(workdir / "ansible.cfg"),
        "ANSIBLE_HOME": str(workdir / ".ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    if local:
        env["ANSIBLE_ASYNC_DIR"] = str(workdir / ".ansible-async")
    return [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbook.yml", *args], env


def run_playbook(
    workdir: Path,
    plays: list[dict[str, Any]],
    inventory: dict[str, Any] | Path,
    *args: str,
    timeout: int = 300,
) -> PlaybookRun:
    """Run `plays` with ansible-playbook and the JSON callback. An inventory given as a dict is
    written under workdir; a Path (a real fleet's inventory) is used as it is.

    Every file Ansible itself writes on the controller stays under workdir."""
    command, env = playbook_command(workdir, plays, inventory, *args)
    completed = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # Lines a task printed itself (a build's progress) come before the JSON document.
    start = completed.stdout.find("\n{") + 1 if not completed.stdout.startswith("{") else 0
    if completed.stdout.find("{") < 0:
        pytest.fail(
            f"ansible-playbook printed no JSON (rc {completed.returncode}):\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    report = json.loads(completed.stdout[start:])
    # Kept beside the playbook: the first place to look when a run fails.
    (workdir / "report.json").write_text(json.dumps(report, indent=1))
    return PlaybookRun(completed.returncode, completed.stdout, completed.stderr, report)


def run_tasks(
    workdir: Path,
    tasks: list[dict[str, Any]],
    hosts: dict[str, dict[str, Any]],
    *,
    extra_args: tuple[str, ...] = (),
    report_vars: tuple[str, ...] = (),
) -> PlaybookRun:
    """Run `tasks` in one play on one local host per entry of `hosts` (name -> host vars).

    With `report_vars`, a final debug task named "Report" prints those variables so tests can read
    them with `PlaybookRun.value`.
    """
    play_tasks = list(tasks)
    if report_vars:
        published = ", ".join(f"'{name}': {name}" for name in report_vars)
        play_tasks.append(
            {"name": "Report", "ansible.builtin.debug": {"msg": "{{ {" + published + "} }}"}}
        )
    play = {"name": "Test", "hosts": "all", "gather_facts": False, "tasks": play_tasks}
    return run_playbook(workdir, [play], local_inventory(hosts), *extra_args)


def load_plugin(role: str, kind: str, name: str) -> Any:
    """A role's plugin file (roles/<role>/<kind>/<name>.py) as a module, to test its functions."""
    path = ROLES / role / kind / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"labrig_{role}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_stand_in_generator() -> Any:
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
    for previous, line in itertools.pairwise(completed.stdout.splitlines()):
        origin = _ORIGIN.match(previous)
        if origin and origin["file"] == str(config_mk):
            assignment = _ASSIGNMENT.match(line)
            if assignment:
                variables[assignment["name"]] = assignment["value"].strip()
    return variables


def role_vars_file(role: str, relative: str) -> dict[str, Any]:
    return yaml.safe_load((ROLES / role / relative).read_text())


# --- Package/version resolution for every supported OS x install method -------------------------
# One ansible-playbook run renders every role's plan for each case below; the per-role test files
# (test_nvidia_driver_resolve.py, test_cuda_resolve.py, ...) assert on it.

DEBIAN12 = {"distribution": "Debian", "version": "12", "codename": "bookworm", "arch": "x86_64"}
UBUNTU20 = {"distribution": "Ubuntu", "version": "20.04", "codename": "focal", "arch": "x86_64"}
UBUNTU22 = {"distribution": "Ubuntu", "version": "22.04", "codename": "jammy", "arch": "x86_64"}
UBUNTU24 = {"distribution": "Ubuntu", "version": "24.04", "codename": "noble", "arch": "x86_64"}
CUDNN_WHEEL = "/srv/wheels/nvidia_cudnn_cu11-8.9.6.50-py3-none-manylinux1_x86_64.whl"
# A host's own sources as Debian 12 writes them (deb822), plus a classic one-line list. The mirror
# names are placeholders: the role copies whatever the host already uses.
HOST_SOURCES = [
    {
        "path": "/etc/apt/sources.list.d/debian.sources",
        "content": (
            "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
            "Components: main\n\n"
            "Types: deb\nEnabled: no\nURIs: http://disabled.invalid/debian\nSuites: bookworm\n"
            "Components: main\n"
        ),
    },
    {
        "path": "/etc/apt/sources.list",
        "content": (
            "# deb http://commented.invalid/debian bookworm main\n"
            "deb [arch=amd64] http://other.invalid/debian bookworm main contrib\n"
            "deb cdrom:[Debian 12]/ bookworm main\n"
        ),
    },
]

POLICY = "nvidia-driver:\n  Installed: {}\n  Candidate: {}\n  Version table:\n"

RESOLUTION_CASES: dict[str, dict[str, Any]] = {
    "debian12_defaults": {
        "labrig_platform": DEBIAN12,
        "cudnn_wheel_file": CUDNN_WHEEL,
        "apt_sources_host_sources": HOST_SOURCES,
        "labrig_apt_proxy": "http://10.203.0.1:3142",
        "nvidia_driver_package_version": "535.216.03-1~deb12u1",
        # Nothing installed yet: the candidate (from bookworm-security here) is taken.
        "nvidia_driver_apt_policy": POLICY.format("(none)", "535.309.01-0+deb12u1"),
    },
    "debian12_open_nvidia_repo_openblas": {
        "labrig_platform": DEBIAN12,
        "nvidia_driver_kernel_modules": "open",
        "nvidia_driver_install_method": "nvidia_repo",
        "labrig_blas": "openblas",
        "cudnn_wheel_file": CUDNN_WHEEL,
        "apt_sources_host_sources": [],
        "apt_sources_debian_sources": [
            {"uris": "http://local-mirror.invalid/debian", "suites": "bookworm"}
        ],
        "nvidia_driver_package_version": "1:550.54.15-1",
    },
    "ubuntu22_defaults": {
        "labrig_platform": UBUNTU22,
        "nvidia_driver_package_version": "580.126.09-0ubuntu0.22.04.1",
        # Installed and in the branch: kept, even though a newer candidate exists.
        "nvidia_driver_apt_policy": POLICY.format(
            "580.126.09-0ubuntu0.22.04.1", "580.142-0ubuntu0.22.04.1"
        ),
    },
    # Secure Boot on: Canonical's signed modules for the host's kernel flavour, no DKMS.
    "ubuntu22_secure_boot": {
        "labrig_platform": UBUNTU22,
        "preflight_secure_boot_output": "SecureBoot enabled",
        "nvidia_driver_kernel_flavour": "generic-hwe-22.04",
    },
    "ubuntu22_server_open_atlas": {
        "labrig_platform": UBUNTU22,
        "nvidia_driver_branch": "535",
        "nvidia_driver_ubuntu_server": "true",
        "nvidia_driver_kernel_modules": "open",
        "labrig_blas": "atlas",
        "apt_sources_proxy_https": "http://10.203.0.1:3128",
        # An explicit pin wins over whatever is installed.
        "nvidia_driver_version": "535.216.01-0ubuntu0.22.04.1",
        "nvidia_driver_apt_policy": POLICY.format("535.183.01-0ubuntu0.22.04.1", "550.1-1"),
        "labrig_apt_proxy": "http://10.203.0.1:3142",
    },
    "ubuntu20_nvidia_repo_oneapi": {
        "labrig_platform": UBUNTU20,
        "nvidia_driver_install_method": "nvidia_repo",
        "mkl_method": "oneapi",
        # Installed from another branch: the candidate in the wanted branch replaces it.
        "nvidia_driver_apt_policy": POLICY.format("470.239.06-1", "535.216.03-1"),
        "mkl_version": "2024.2.1-103",
        "cudnn_version": "8.6.0.163",
    },
    "ubuntu24_runfiles_tarball": {
        "labrig_platform": UBUNTU24,
        "nvidia_driver_install_method": "runfile",
        "cudnn_method": "tarball",
        "cudnn_version": "8.9.7.29",
    },
}

RESOLUTION_TASKS = [
    {
        "name": f"Resolve {role}",
        "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from, "public": True},
    }
    for role, tasks_from in (
        ("nvidia_driver", "resolve.yml"),
        ("cuda", "resolve.yml"),
        ("cudnn", "resolve.yml"),
        ("mkl", "resolve.yml"),
        ("apt_sources", "resolve_debian.yml"),
        ("apt_sources", "render.yml"),
    )
]
