"""Fixtures for tests that drive a running local fleet (brought up by tests/fleet/e2e.sh).

A test gets the fleet through `LABRIG_FLEET_INVENTORY` (the inventory `fleet.sh up` wrote); without
it, the fleet tests skip here and e2e.sh decides whether that is allowed (it is not in CI).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from fleet_support import Fleet

PROFILES = Path(__file__).with_name("profiles.yml")
CUDNN_WHEEL_GLOB = "nvidia_cudnn_cu11-8.*.whl"


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    inventory = os.environ.get("LABRIG_FLEET_INVENTORY")
    if not inventory:
        pytest.skip("no fleet: run tests/fleet/e2e.sh, or set LABRIG_FLEET_INVENTORY")
    if not Path(inventory).is_file():
        pytest.fail(f"LABRIG_FLEET_INVENTORY={inventory} does not exist: is the fleet up?")
    return Fleet(inventory)


def _profile_vars(fleet: Fleet) -> dict[str, dict[str, Any]]:
    profiles = yaml.safe_load(PROFILES.read_text())
    wheelhouse = Path(fleet.vars.get("labrig_wheelhouse", ""))
    wheels = sorted(wheelhouse.glob(CUDNN_WHEEL_GLOB)) if wheelhouse.name else []
    host_vars = {}
    for host in fleet.hosts:
        values = dict(profiles.get(host, profiles["node2"]))
        if values.get("cudnn_method") == "wheel" and wheels:
            values["cudnn_wheel_file"] = str(wheels[-1])
            values["cudnn_wheel_sha256"] = hashlib.sha256(wheels[-1].read_bytes()).hexdigest()
        host_vars[host] = values
    return host_vars


@pytest.fixture(scope="session")
def make_inventory(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """An inventory for the fleet with each host's profile, plus any overrides per host.

    `make_inventory(name, node3={"preflight_facts_override": {...}})` → path of its hosts.ini.
    """
    profiles = _profile_vars(fleet)

    def build(name: str = "profiled", **overrides: dict[str, Any]) -> Path:
        folder = tmp_path_factory.mktemp(f"inventory-{name}")
        shutil.copy(fleet.inventory, folder / "hosts.ini")
        (folder / "host_vars").mkdir()
        for host, values in profiles.items():
            merged = {**values, **overrides.get(host, {}), **overrides.get("all", {})}
            (folder / "host_vars" / f"{host}.yml").write_text(
                "---\n" + yaml.safe_dump(merged, sort_keys=True)
            )
        return folder / "hosts.ini"

    return build


@pytest.fixture(scope="session")
def profiled_inventory(make_inventory: Callable[..., Path]) -> Path:
    return make_inventory()
