"""Helpers the role tests share: run a throwaway playbook through the real Ansible.

Kept out of conftest.py so test modules can import them without clashing with
tests/fleet/conftest.py when pytest collects both folders in one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
ANSIBLE_BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    def host_tasks(self, host: str) -> list[tuple[str, dict[str, Any]]]:
        """(task name, result) for every task that ran on `host`, in order."""
        out = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                result = task.get("hosts", {}).get(host)
                if result is not None:
                    out.append((task["task"]["name"], result))
        return out

    def failure(self, host: str) -> str | None:
        """The message of the task that failed `host`, or None when it did not fail."""
        for _name, result in self.host_tasks(host):
            if result.get("failed") and result.get("failed_when_result") is not False:
                if "ansible_loop_var" in result or "results" in result:
                    for item in result.get("results", []):
                        if item.get("failed"):
                            return str(item.get("msg", ""))
                return str(result.get("msg", ""))
        return None

    def result(self, host: str, task_name: str) -> dict[str, Any]:
        """The result of the last task called `task_name` on `host`."""
        found = [r for name, r in self.host_tasks(host) if name == task_name]
        assert found, f"task {task_name!r} did not run on {host}:\n{self.stdout[-3000:]}"
        return found[-1]

    def value(self, host: str, name: str) -> Any:
        """A variable published by the play's final `Report` debug task."""
        return self.result(host, "Report")["msg"][name]


def run_playbook(
    tmp_path: Path,
    tasks: list[dict[str, Any]],
    hosts: dict[str, dict[str, Any]],
    *,
    extra_args: tuple[str, ...] = (),
    report_vars: tuple[str, ...] = (),
) -> PlaybookRun:
    """Run `tasks` on one local host per entry of `hosts` (name -> host vars).

    With `report_vars`, a final debug task named "Report" prints those variables so tests can read
    them with `PlaybookRun.value`.
    """
    inventory = {
        "all": {
            "hosts": {
                name: {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                    **host_vars,
                }
                for name, host_vars in hosts.items()
            }
        }
    }
    play_tasks = list(tasks)
    if report_vars:
        play_tasks.append(
            {
                "name": "Report",
                "ansible.builtin.debug": {
                    "msg": "{{ {" + ", ".join(f"'{v}': {v}" for v in report_vars) + "} }}"
                },
            }
        )
    playbook = [{"name": "Test", "hosts": "all", "gather_facts": False, "tasks": play_tasks}]
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    # Our own config, not the project's: its timing callback would mix text into the JSON.
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\n"
        f"roles_path = {ROLES}\n"
        "stdout_callback = ansible.posix.json\n"
        "forks = 8\n"
        "deprecation_warnings = False\n"
        "retry_files_enabled = False\n"
        f"local_tmp = {tmp_path / 'ansible-tmp'}\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")} | {
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")
    }
    proc = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), "-i", "inventory.yml", "play.yml", *extra_args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"ansible-playbook printed no JSON (rc {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, report)


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
        "nvidia_driver_package_version": "535.183.01-0ubuntu0.22.04.1",
        # Installed and in the branch: kept, even though a newer candidate exists.
        "nvidia_driver_apt_policy": POLICY.format(
            "535.183.01-0ubuntu0.22.04.1", "535.216.01-0ubuntu0.22.04.1"
        ),
    },
    "ubuntu22_server_open_atlas": {
        "labrig_platform": UBUNTU22,
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
