"""The two example inventories describe the same lab: the INI file (`make lint` syntax-checks the
playbooks against it) and the YAML directory with group_vars/ beside it."""

from __future__ import annotations

import json
import subprocess

import pytest
from role_support import BIN, REPO


def inventory(source: str) -> dict:
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", source, "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{BIN}:/usr/bin:/bin"},
    )
    return json.loads(listed.stdout)


def members(listing: dict, group: str) -> set[str]:
    found = set(listing.get(group, {}).get("hosts", []))
    for child in listing.get(group, {}).get("children", []):
        found |= members(listing, child)
    return found


def as_text(host_vars: dict) -> dict:
    # INI values are strings ("true", "535"); YAML ones are typed.
    return {name: str(value).lower() for name, value in host_vars.items()}


@pytest.fixture(scope="module")
def both() -> tuple[dict, dict]:
    return inventory("inventory.example"), inventory("inventory.example.d")


def test_same_hosts_and_groups(both):
    ini, yml = both
    groups = ("all", "workstations", "gpu", "ampere", "ada", "hopper", "cpu_only")
    assert {group: members(ini, group) for group in groups} == {
        group: members(yml, group) for group in groups
    }
    assert members(yml, "all") == {"ws01", "ws02", "ws03", "gpu01", "build01"}


def test_same_variables_for_every_host(both):
    ini, yml = both
    for host in members(ini, "all"):
        assert as_text(yml["_meta"]["hostvars"][host]) == as_text(ini["_meta"]["hostvars"][host])
