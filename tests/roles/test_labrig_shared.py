"""What the labrig role shares, run through Ansible on localhost: the platform every role reads,
the reboot marker that keeps each role's reason, the expectations writer and the sha256-checked
copy from the controller. Nothing here reboots: every host is a local connection and none may."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import yaml
from role_support import (
    DEBIAN12,
    ROLES,
    UBUNTU20,
    UBUNTU22,
    UBUNTU24,
    local_inventory,
    run_playbook,
    run_tasks,
)


def labrig(tasks_from: str, **params) -> dict:
    return {
        "name": f"labrig {tasks_from}",
        "ansible.builtin.include_role": {"name": "labrig", "tasks_from": tasks_from},
        "vars": params,
    }


def test_platform_comes_from_the_facts_unless_overridden(tmp_path: Path) -> None:
    play = {
        "name": "Platform",
        "hosts": "all",
        "gather_facts": True,
        "gather_subset": ["!all", "!min", "distribution", "platform"],
        "roles": ["labrig"],
        "tasks": [
            {
                "name": "Report",
                "ansible.builtin.debug": {
                    "msg": "{{ {'platform': labrig_platform, 'id': labrig_platform_id} }}"
                },
            }
        ],
    }
    facts_override = {"distribution": "CentOS", "distribution_major_version": "7"}
    inventory = local_inventory(
        {"facts": {}, "override": {"preflight_facts_override": facts_override}}
    )
    run = run_playbook(tmp_path, [play], inventory)

    assert run.failure("facts") is None, run.stdout[-3000:]
    gathered = run.result("facts", "Report")["msg"]
    assert set(gathered["platform"]) == {"distribution", "version", "codename", "arch"}
    assert gathered["id"] == gathered["platform"]["distribution"].lower() + str(
        gathered["platform"]["version"]
    )
    overridden = run.result("override", "Report")["msg"]["platform"]
    assert (overridden["distribution"], overridden["version"]) == ("CentOS", "7")


def test_the_reboot_marker_keeps_every_roles_reason(tmp_path: Path) -> None:
    marker = tmp_path / "run" / "reboot-required"
    nvidia_reboot = {
        "name": "nvidia_driver asks for a reboot",
        "ansible.builtin.include_role": {"name": "nvidia_driver", "tasks_from": "reboot.yml"},
        "vars": {"nvidia_driver_reboot": "always"},
    }
    other = labrig(
        "reboot",
        labrig_reboot_reason="another reason",
        labrig_reboot_ok=False,
        labrig_reboot_refusal="set something",
        labrig_reboot_timeout=60,
    )
    first = run_tasks(tmp_path / "first", [nvidia_reboot, other], {"ws": _marker_at(marker)})
    assert first.failure("ws") is None, first.stdout[-3000:]
    assert marker.read_text().splitlines() == [
        "nvidia_driver: nvidia_driver_reboot is always",
        "labrig: another reason",
    ]
    said = [
        r["msg"]
        for name, r in first.host_results("ws")
        if name.endswith("Say why the reboot was not done")
    ]
    assert said[0].startswith("nvidia_driver: a reboot is needed (nvidia_driver_reboot is always)")
    assert all("the connection is local" in line and str(marker) in line for line in said), said

    again = run_tasks(tmp_path / "again", [nvidia_reboot, other], {"ws": _marker_at(marker)})
    assert again.stats["ws"]["changed"] == 0, again.stdout[-3000:]

    other["vars"]["labrig_reboot_reason"] = "a newer reason"
    changed = run_tasks(tmp_path / "changed", [other], {"ws": _marker_at(marker)})
    assert changed.failure("ws") is None, changed.stdout[-3000:]
    assert marker.read_text().splitlines() == [
        "nvidia_driver: nvidia_driver_reboot is always",
        "labrig: a newer reason",
    ]


def _marker_at(marker: Path) -> dict:
    # Allowed by the role but refused all the same: the connection is local.
    return {"labrig_reboot_marker": str(marker), "nvidia_driver_reboot_ok": False}


def test_expectations_are_written_once_under_the_callers_name(tmp_path: Path) -> None:
    path = tmp_path / "expectations.d" / "20-driver.yml"
    write = labrig(
        "expectations",
        labrig_expectations_file=str(path),
        labrig_expectations={"driver_version": "535.216.03", "gpu_count": 2},
    )
    first = run_tasks(tmp_path / "first", [write], {"ws": {}})
    assert first.failure("ws") is None, first.stdout[-3000:]
    assert yaml.safe_load(path.read_text()) == {"driver_version": "535.216.03", "gpu_count": 2}
    assert path.read_text().startswith("# Managed by labrig (labrig role)")

    again = run_tasks(tmp_path / "again", [write], {"ws": {}})
    assert again.stats["ws"]["changed"] == 0, again.stdout[-3000:]


def test_a_fetched_file_is_used_only_with_its_sha256(tmp_path: Path) -> None:
    source = tmp_path / "cuda_11.8.0_520.61.05_linux.run"
    source.write_bytes(b"#!/bin/sh\n")
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    hosts = {
        name: {"dest": str(tmp_path / name / source.name), "sha256": sha256}
        for name, sha256 in (("good", good.upper()), ("bad", "0" * 64))
    }
    fetch = labrig(
        "fetch",
        labrig_fetch_src=str(source),
        labrig_fetch_sha256="{{ sha256 }}",
        labrig_fetch_sha256_name="cuda_runfile_sha256",
        labrig_fetch_dest="{{ dest }}",
        labrig_fetch_mode="0700",
    )
    report = {"name": "Report", "ansible.builtin.debug": {"msg": "{{ labrig_fetched }}"}}

    run = run_tasks(tmp_path / "run", [fetch, report], hosts)

    assert run.failure("good") is None, run.stdout[-3000:]
    assert run.result("good", "Report")["msg"] == {
        "path": hosts["good"]["dest"],
        "changed": True,
        "exists": True,
    }
    assert Path(hosts["good"]["dest"]).stat().st_mode & 0o777 == 0o700
    message = run.failure_message("bad") or ""
    assert f"has sha256 {good}, not the {'0' * 64} of cuda_runfile_sha256" in message, message


def test_resolution_of_auto_follows_the_platform(tmp_path: Path) -> None:
    hosts = {
        "debian": {"labrig_platform": DEBIAN12},
        "debian_repo": {"labrig_platform": DEBIAN12, "cuda_install_method": "nvidia_repo"},
        "unknown": {"labrig_platform": {**DEBIAN12, "version": "11"}},
        "ubuntu20": {"labrig_platform": UBUNTU20},
        "ubuntu22": {"labrig_platform": UBUNTU22},
        "ubuntu24": {"labrig_platform": UBUNTU24},
    }
    run = run_tasks(
        tmp_path,
        [
            {
                "ansible.builtin.include_role": {
                    "name": "labrig",
                    "tasks_from": "modules",
                    "public": True,
                }
            }
        ],
        hosts,
        report_vars=("labrig_cuda_method", "labrig_cudnn_method", "labrig_nccl_method"),
    )
    methods = {
        host: tuple(run.value(host, f"labrig_{part}_method") for part in ("cuda", "cudnn", "nccl"))
        for host in hosts
    }
    assert methods == {
        "debian": ("distro", "wheel", "wheel"),
        "debian_repo": ("nvidia_repo", "wheel", "wheel"),
        # A release preflight refuses resolves to nothing rather than to a guess.
        "unknown": ("", "", "wheel"),
        "ubuntu20": ("nvidia_repo", "repo", "wheel"),
        "ubuntu22": ("nvidia_repo", "repo", "wheel"),
        # NVIDIA's ubuntu2404 repository has cuDNN 9 only: cuDNN 8 from the wheel.
        "ubuntu24": ("runfile", "wheel", "wheel"),
    }


def _pin_filter():
    path = ROLES / "labrig" / "filter_plugins" / "apt_pin.py"
    spec = importlib.util.spec_from_file_location("labrig_apt_pin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.labrig_apt_pin_version


@pytest.mark.parametrize(
    ("installed", "candidate", "version", "series", "pinned"),
    [
        # The toolkit already installed at the version asked for stays, though a newer one exists.
        ("11.8.89~11.8.0-5~deb12u1", "11.8.89~11.8.0-6", "", "11.8", "11.8.89~11.8.0-5~deb12u1"),
        ("(none)", "11.8.0-1", "", "11.8", "11.8.0-1"),
        # Another release installed: the candidate replaces it (and the role checks its series).
        ("11.7.1-1", "11.8.0-1", "", "11.8", "11.8.0-1"),
        ("1:535.216.03-1", "1:550.54.15-1", "", "535", "1:535.216.03-1"),
        # An explicit version wins over both.
        ("11.8.0-1", "11.8.0-2", "11.8.0-3", "11.8", "11.8.0-3"),
    ],
)
def test_the_pinned_version_from_apt_cache_policy(installed, candidate, version, series, pinned):
    policy = f"pkg:\n  Installed: {installed}\n  Candidate: {candidate}\n  Version table:\n"
    assert _pin_filter()(policy, version, series) == pinned


def test_a_newer_version_installed_by_hand_does_not_hide_the_series():
    # apt never makes a downgrade the candidate: the archive's newest in the series is found in
    # the version table (and the driver role then refuses the downgrade, see test_live_lab_guards).
    policy = (
        "nvidia-driver:\n  Installed: 999.0-1\n  Candidate: 999.0-1\n  Version table:\n"
        " *** 999.0-1 100\n        100 /var/lib/dpkg/status\n"
        "     535.309.01-0+deb12u1 500\n"
        "        500 http://mirror.invalid/debian-security bookworm-security/non-free Packages\n"
        "     535.247.01-1~deb12u1 500\n"
        "        500 http://mirror.invalid/debian bookworm/non-free amd64 Packages\n"
    )
    assert _pin_filter()(policy, "", "535") == "535.309.01-0+deb12u1"
