"""What preflight reads from the host, run through Ansible on this machine with the firmware and
the filesystems pointed at tmp_path: Secure Boot from the EFI variable when mokutil says nothing,
and free space per filesystem with the components already there."""

from __future__ import annotations

from pathlib import Path

from role_support import run_tasks

GATHER = {
    "name": "preflight gather",
    "ansible.builtin.include_role": {"name": "preflight", "tasks_from": "gather.yml"},
}
SECURE_BOOT_VARIABLE = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def test_secure_boot_is_read_from_the_efi_variable(tmp_path: Path) -> None:
    hosts = {}
    for name, value in (("enforcing", 1), ("off", 0)):
        efivars = tmp_path / name
        efivars.mkdir()
        # 4 bytes of attributes (non-volatile, boot and runtime access), then the value.
        (efivars / SECURE_BOOT_VARIABLE).write_bytes(bytes([0x06, 0, 0, 0, value]))
        hosts[name] = {"efivars": str(efivars)}
    hosts["no_firmware"] = {"efivars": str(tmp_path / "absent")}
    # The role's own vars outrank the inventory's: the path goes in as the include's vars.
    gather = {**GATHER, "vars": {"__preflight_efivars": "{{ efivars }}"}}

    run = run_tasks(
        tmp_path / "run", [gather], hosts, report_vars=("preflight_secure_boot_output",)
    )

    said = {host: run.value(host, "preflight_secure_boot_output").lower() for host in hosts}
    assert "secureboot enabled" in said["enforcing"], said
    assert "secureboot enabled" not in said["off"], said
    assert "secureboot enabled" not in said["no_firmware"], said


def test_each_path_is_measured_on_its_own_filesystem(tmp_path: Path) -> None:
    marker = tmp_path / "venv" / "bin" / "python"
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    host = {
        # A path that does not exist yet is measured where it would be created.
        "preflight_disk_paths": ["/", str(tmp_path / "not" / "yet")],
        "preflight_disk_installed": {"mxnet_pip": [str(marker)], "cuda": [str(tmp_path / "no")]},
    }

    run = run_tasks(
        tmp_path / "run",
        [GATHER],
        {"ws": host},
        report_vars=("preflight_filesystems", "preflight_installed_components"),
    )

    filesystems = run.value("ws", "preflight_filesystems")
    assert set(filesystems) == {"/", str(tmp_path / "not" / "yet")}, filesystems
    assert all(fs["free_mib"] > 0 and fs["mount"].startswith("/") for fs in filesystems.values())
    assert run.value("ws", "preflight_installed_components") == ["mxnet_pip"]
