"""The driver role's decisions on Ubuntu's package metadata, run through Ansible with a stand-in
apt-cache that answers with recorded records (tests/fixtures/apt/ubuntu-driver-records.yml, each
naming its source). No Ubuntu archive is reachable here: these are proved by recorded metadata,
not on hosts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from role_support import REPO, UBUNTU22, load_plugin, run_tasks

RECORDS = yaml.safe_load((REPO / "tests/fixtures/apt/ubuntu-driver-records.yml").read_text())


def _filters():
    return load_plugin("nvidia_driver", "filter_plugins", "driver_packages")


def _stand_in_apt_cache(folder: Path, candidate: str, records: str) -> Path:
    folder.mkdir()
    policy = (
        f"nvidia-driver-535:\n  Installed: (none)\n  Candidate: {candidate}\n  Version table:\n"
        f"     {candidate} 500\n        500 http://mirror.invalid/ubuntu jammy/main Packages\n"
    )
    (folder / "apt-cache").write_text(
        "#!/bin/sh\nif [ \"$1\" = policy ]; then cat <<'EOF'\n"
        + policy
        + "EOF\nelse cat <<'EOF'\n"
        + records
        + "EOF\nfi\n"
    )
    (folder / "apt-cache").chmod(0o755)
    return folder


def _version_task(fake: Path) -> dict:
    return {
        "name": "nvidia_driver version",
        "ansible.builtin.include_role": {
            "name": "nvidia_driver",
            "tasks_from": "version.yml",
            "apply": {"environment": {"PATH": f"{fake}:{os.environ['PATH']}"}},
        },
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "transitional_535",
            "nvidia-driver-535 535.183.01-0ubuntu3 is a transitional package "
            "(Section non-free/oldlibs) for nvidia-driver-560",
        ),
        ("real_535_jammy", None),
    ],
)
def test_a_transitional_driver_is_refused_by_its_metadata_though_its_version_is_535(
    tmp_path: Path, case: str, expected: str | None
) -> None:
    records = RECORDS[case]["records"]
    version = next(line.split()[1] for line in records.splitlines() if line.startswith("Version:"))
    assert version.startswith("535."), "the version prefix alone cannot tell them apart"
    fake = _stand_in_apt_cache(tmp_path / "bin", version, records)
    host = {
        "labrig_platform": UBUNTU22,
        "nvidia_driver_branch": "535",
        "nvidia_driver_plan": {"versioned": ["nvidia-driver-535", "nvidia-dkms-535"]},
    }

    run = run_tasks(tmp_path / "run", [_version_task(fake)], {"ws": host})

    message = run.failure_message("ws")
    if expected is None:
        assert message is None, run.stdout[-3000:]
        return
    assert message and expected in message, message
    assert "set nvidia_driver_branch to the branch it points to" in message, message


def test_the_transitional_filter_reads_section_description_and_target():
    transitional = _filters().labrig_apt_transitional
    assert transitional(RECORDS["transitional_535_to_580"]["records"]) == (
        "nvidia-dkms-535 580.142-0ubuntu3 is a transitional package "
        "(Section non-free/oldlibs) for nvidia-dkms-580"
    )
    assert transitional(RECORDS["real_535_jammy"]["records"]) == ""
    # A record marked only by its description is transitional too.
    described = (
        "Package: foo\nSection: libs\nDepends: bar\nDescription: foo (transitional package)\n"
    )
    assert (
        transitional(described)
        == 'foo is a transitional package ("foo (transitional package)") for bar'
    )


def test_the_signed_modules_follow_the_installed_kernel_metapackage():
    flavour = _filters().labrig_ubuntu_kernel_flavour
    installed = [
        line.split()[1]
        for line in RECORDS["kernel_packages_jammy_hwe"].splitlines()
        if line.startswith("ii ")
    ]
    assert flavour(installed) == "generic-hwe-22.04"
    assert flavour(["linux-image-virtual", "linux-image-6.8.0-52-generic"]) == "generic"
    assert flavour(["linux-image-6.8.0-52-generic"]) == ""


def test_ubuntu_enrols_the_key_its_dkms_signs_with(tmp_path: Path) -> None:
    hosts = {
        "debian": {"labrig_platform": {**UBUNTU22, "distribution": "Debian", "version": "12"}},
        "ubuntu": {"labrig_platform": UBUNTU22},
    }
    task = {
        "ansible.builtin.include_role": {
            "name": "nvidia_driver",
            "tasks_from": "resolve.yml",
            "public": True,
        }
    }

    run = run_tasks(tmp_path, [task], hosts, report_vars=("nvidia_driver_mok",))

    assert run.value("debian", "nvidia_driver_mok") == {
        "key": "/var/lib/dkms/mok.key",
        "certificate": "/var/lib/dkms/mok.pub",
    }
    assert run.value("ubuntu", "nvidia_driver_mok") == {
        "key": "/var/lib/shim-signed/mok/MOK.priv",
        "certificate": "/var/lib/shim-signed/mok/MOK.der",
    }
