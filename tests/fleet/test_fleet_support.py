"""The fleet tests' own plumbing, checked without a fleet (milliseconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fleet_support import Fleet, parse_play_recap

FLEET_SH = Path(__file__).with_name("fleet.sh")
FLEET_TOOLS = ("debootstrap", "systemd-nspawn", "apt-cacher-ng", "zstd", "ip", "ssh-keygen")

# As ansible-playbook prints it, with the padding between counters shortened to fit the line.
RECAP_WITH_PROFILE_TASKS = """\
TASK [Reach the host] **********************************************************
ok: [node1]

PLAY RECAP *********************************************************************
node1             : ok=10 changed=4 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0
node2             : ok=9 changed=0 unreachable=1 failed=0 skipped=1 rescued=0 ignored=0
ws-03.lab.example : ok=2 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0

TASKS RECAP ********************************************************************
Friday 27 November 2026  10:38:08 +0000 (0:00:00.215)       0:02:12.316 *******
Rebuild the initramfs -------------------------------------------------- 94.75s
"""


def test_recap_reads_every_host_and_counter() -> None:
    recap = parse_play_recap(RECAP_WITH_PROFILE_TASKS)

    assert sorted(recap) == ["node1", "node2", "ws-03.lab.example"]
    assert recap["node1"]["changed"] == 4
    assert recap["node2"]["unreachable"] == 1
    assert recap["ws-03.lab.example"]["failed"] == 1
    assert recap["node1"]["ignored"] == 0


def test_recap_uses_the_last_play_recap_only() -> None:
    two_runs = RECAP_WITH_PROFILE_TASKS + RECAP_WITH_PROFILE_TASKS.replace("changed=4", "changed=0")

    assert parse_play_recap(two_runs)["node1"]["changed"] == 0


def test_no_recap_when_the_playbook_never_ran() -> None:
    assert parse_play_recap("error: HOST=nosuchhost is not a host or group\n") == {}


def test_fleet_reads_hosts_and_connection_settings_from_its_inventory(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    state.mkdir()
    inventory = state / "inventory.ini"
    inventory.write_text(
        "# Written by tests/fleet/fleet.sh\n[fleet]\nnode1 ansible_host=10.203.0.11\n"
        "node2 ansible_host=10.203.0.12\n\n[fleet:vars]\nansible_user=labrig\n"
        "ansible_ssh_private_key_file=/run/labrig-fleet/lab/id_ed25519\n"
        "ansible_ssh_common_args='-o UserKnownHostsFile=/run/labrig-fleet/lab/known_hosts "
        "-o StrictHostKeyChecking=yes'\nlabrig_wheelhouse=/var/cache/labrig-fleet/wheels\n"
    )

    fleet = Fleet(inventory)

    assert fleet.name == "lab"
    assert fleet.hosts == {"node1": "10.203.0.11", "node2": "10.203.0.12"}
    assert fleet.vars["ansible_user"] == "labrig"
    assert fleet.vars["ansible_ssh_common_args"].endswith("StrictHostKeyChecking=yes")
    assert fleet.vars["labrig_wheelhouse"] == "/var/cache/labrig-fleet/wheels"


def _fleet_sh_down(cache: Path, keep: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LABRIG_FLEET": "keeptest",
        "LABRIG_FLEET_HOSTS": "2",
        "LABRIG_FLEET_SUBNET": "10.203.254.0/24",
        "LABRIG_FLEET_CACHE": str(cache),
    }
    env.pop("LABRIG_FLEET_KEEP", None)
    if keep is not None:
        env["LABRIG_FLEET_KEEP"] = keep
    return subprocess.run(
        [str(FLEET_SH), "down"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in FLEET_TOOLS),
    reason="fleet.sh down needs root and the fleet's tools (tests/fleet/install-host-packages.sh)",
)
def test_down_keeps_only_the_layers_named_in_labrig_fleet_keep(tmp_path: Path) -> None:
    assert not Path("/run/labrig-fleet/keeptest").exists(), "a fleet 'keeptest' is up"
    layers = tmp_path / "layers" / "keeptest"
    for host in ("node1", "node2"):
        (layers / host / "upper" / "opt").mkdir(parents=True)
        (layers / host / "upper" / "opt" / "build.o").write_text("object")

    kept = _fleet_sh_down(tmp_path, keep="node1")

    assert kept.returncode == 0, kept.stderr
    assert (layers / "node1" / "upper" / "opt" / "build.o").is_file()
    assert not (layers / "node2").exists()

    plain = _fleet_sh_down(tmp_path, keep=None)

    assert plain.returncode == 0, plain.stderr
    assert not layers.exists()
