"""provision.yml/site.yml parse against the example inventory, preflight comes first, and every
role has its tag."""

import subprocess

import pytest
from role_support import BIN, REPO


def ansible_playbook(*args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventory.example", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "PATH": str(BIN) + ":/usr/bin:/bin",
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def task_listing() -> str:
    return ansible_playbook("--list-tasks", "playbooks/provision.yml")


def test_syntax():
    for playbook in ("playbooks/provision.yml", "playbooks/site.yml"):
        ansible_playbook("--syntax-check", playbook)


def test_preflight_runs_before_any_role_that_changes_hosts(task_listing):
    first_change = min(
        task_listing.index(f"{role} : ") for role in ("apt_sources", "nouveau", "nvidia_driver")
    )
    assert task_listing.index("preflight : ") < first_change
    assert task_listing.index("Preflight - check every host") < task_listing.index(
        "Provision the NVIDIA stack"
    )


def test_every_role_has_its_tag(task_listing):
    for tag in ("preflight", "apt", "nouveau", "nvidia_driver", "cuda", "cudnn", "mkl", "mxnet"):
        assert f"{tag}" in task_listing
        assert f"TAGS: [{tag}" in task_listing or f", {tag}" in task_listing, tag
