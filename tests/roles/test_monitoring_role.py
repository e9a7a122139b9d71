"""The monitoring role's logic: the units and node_exporter's arguments as Ansible renders them
(Debian and Ubuntu, as data), and the GPU-busy condition run against a process table of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from role_support import REPO, ROLES, run_playbook

ROLE = ROLES / "monitoring"
BUSY = ROLE / "files" / "labrig-gpu-busy"
TEMPLATES = ("labrig-verify.service", "labrig-verify.timer", "node-exporter-defaults")


def render(tmp_path: Path, hosts: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Each host's rendered templates, through the role's own defaults and vars. Defaults go in
    as group variables, below the hosts' own, as role defaults are."""
    defaults = {}
    for role in ("labrig", "verify", "monitoring"):
        defaults |= yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    # The platform is the host's here, not the one the labrig role computes from facts.
    defaults.pop("labrig_platform")
    out = tmp_path / "out"
    play = {
        "name": "Render",
        "hosts": "all",
        "gather_facts": False,
        "vars_files": [str(ROLE / "vars" / "main.yml")],
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.template": {
                    "src": f"{ROLE}/templates/{{{{ item }}}}.j2",
                    "dest": f"{out}/{{{{ inventory_hostname }}}}-{{{{ item }}}}",
                    "mode": "0644",
                },
                "loop": list(TEMPLATES),
            }
        ],
    }
    inventory = {
        "all": {
            "hosts": {
                name: {
                    "labrig_platform": {"distribution": "Debian", "version": "12"},
                    "__monitoring_lab_address": "10.0.0.11",
                    **values,
                }
                for name, values in hosts.items()
            },
            "vars": {
                **defaults,
                "ansible_connection": "local",
                "ansible_python_interpreter": "python3",
            },
        }
    }
    out.mkdir()
    run = run_playbook(tmp_path, [play], inventory)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return {name: {t: (out / f"{name}-{t}").read_text() for t in TEMPLATES} for name in hosts}


def unit_lines(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render(
        tmp_path_factory.mktemp("monitoring"),
        {
            "defaults": {},
            "cpu_full_busy_ok": {
                "monitoring_verify_cpu_only": True,
                "monitoring_verify_skip": [],
                "monitoring_verify_when_busy": True,
                "monitoring_verify_extra_args": ["--framework", "torch"],
                "monitoring_schedule": "Mon..Fri 02:00",
                "monitoring_timeout_s": 600,
            },
            "listen_set": {
                "monitoring_listen_address": "fd00::11",
                "monitoring_node_exporter_port": 9200,
                "monitoring_node_exporter_args": ["--collector.systemd"],
            },
            "ubuntu": {"labrig_platform": {"distribution": "Ubuntu", "version": "22.04"}},
        },
    )


def test_default_service_runs_quick_mode_unprivileged_after_the_busy_condition(rendered):
    service = rendered["defaults"]["labrig-verify.service"]
    (command,) = unit_lines(service, "ExecStart")
    assert command.split() == [
        "/opt/labrig/venv/bin/python",
        "-m",
        "verify",
        "--prometheus-textfile",
        "/var/lib/labrig/node-exporter/labrig_verify.prom",
        "--expectations-dir",
        "/etc/labrig/expectations.d",
        "--host",
        "defaults",
        "--no-color",
        "--skip",
        "workload.mlp",
    ]
    assert unit_lines(service, "User") == ["labrig-verify"]
    assert unit_lines(service, "ExecCondition") == [
        "+/usr/local/libexec/labrig-gpu-busy "
        "/var/lib/labrig/node-exporter/labrig_verify_busy.prom nvidia-persistenced nv-hostengine "
        "/usr/lib/xorg/Xorg /usr/bin/Xwayland /usr/bin/gnome-shell /usr/bin/kwin_wayland "
        "/usr/bin/kwin_x11 /usr/bin/plasmashell /usr/bin/sddm-greeter /usr/bin/sddm-greeter-qt6 "
        "/usr/bin/xfwm4 /usr/bin/mutter /usr/bin/cinnamon"
    ]
    assert unit_lines(service, "TimeoutStartSec") == ["1800"]
    assert unit_lines(service, "SuccessExitStatus") == ["1"]
    timer = rendered["defaults"]["labrig-verify.timer"]
    assert unit_lines(timer, "OnCalendar") == ["daily"]
    assert unit_lines(timer, "RandomizedDelaySec") == ["1h"]
    assert unit_lines(timer, "Persistent") == ["true"]


def test_options_reach_the_units(rendered):
    service = rendered["cpu_full_busy_ok"]["labrig-verify.service"]
    (command,) = unit_lines(service, "ExecStart")
    assert command.endswith("--no-color --cpu-only --framework torch")
    assert unit_lines(service, "ExecCondition") == []
    assert unit_lines(service, "TimeoutStartSec") == ["600"]
    # systemd reads the quotes: a calendar spec with spaces stays one value.
    timer = rendered["cpu_full_busy_ok"]["labrig-verify.timer"]
    assert unit_lines(timer, "OnCalendar") == ["Mon..Fri 02:00"]


def test_node_exporter_listens_on_the_lab_address_only(rendered):
    assert unit_lines(rendered["defaults"]["node-exporter-defaults"], "ARGS") == [
        '"--web.listen-address=10.0.0.11:9100 '
        '--collector.textfile.directory=/var/lib/labrig/node-exporter"'
    ]
    assert unit_lines(rendered["listen_set"]["node-exporter-defaults"], "ARGS") == [
        '"--web.listen-address=[fd00::11]:9200 '
        '--collector.textfile.directory=/var/lib/labrig/node-exporter --collector.systemd"'
    ]


def test_ubuntu_is_data_with_the_same_units(rendered):
    assert (
        rendered["ubuntu"]["node-exporter-defaults"]
        == rendered["defaults"]["node-exporter-defaults"]
    )
    assert rendered["ubuntu"]["labrig-verify.timer"] == rendered["defaults"]["labrig-verify.timer"]


# --- the GPU-busy condition, on a process table of its own ----------------------------------


def process(proc: Path, pid: int, exe: str, devices: list[str]) -> None:
    (proc / str(pid) / "fd").mkdir(parents=True)
    os.symlink(exe, proc / str(pid) / "exe")
    for number, device in enumerate(devices):
        os.symlink(device, proc / str(pid) / "fd" / str(number))


def busy(
    tmp_path: Path, proc: Path, textfile: Path | None = None
) -> tuple[subprocess.CompletedProcess, Path]:
    textfile = textfile or tmp_path / "labrig_verify_busy.prom"
    done = subprocess.run(
        [str(BUSY), str(textfile), "nvidia-persistenced", "nv-hostengine", "/usr/lib/xorg/Xorg"],
        env={**os.environ, "PROC_ROOT": str(proc)},
        capture_output=True,
        text=True,
        check=False,
    )
    return done, textfile


def test_no_gpu_process_lets_the_run_go_and_clears_an_old_skip(tmp_path):
    proc = tmp_path / "proc"
    process(proc, 100, "/usr/bin/bash", ["/dev/null", "/dev/pts/0"])
    process(proc, 101, "/usr/bin/nvidia-persistenced", ["/dev/nvidiactl", "/dev/nvidia0"])
    # The desktop's display server, by its full path: a workstation at its login screen is idle.
    process(proc, 102, "/usr/lib/xorg/Xorg", ["/dev/nvidiactl", "/dev/nvidia0"])
    (tmp_path / "labrig_verify_busy.prom").write_text("old\n")
    done, textfile = busy(tmp_path, proc)
    assert done.returncode == 0, done.stderr
    assert not textfile.exists()


def test_a_gpu_job_skips_the_run_and_records_it(tmp_path):
    proc = tmp_path / "proc"
    process(proc, 100, "/usr/bin/bash", ["/dev/null"])
    process(proc, 4242, "/usr/bin/python3.11", ["/dev/null", "/dev/nvidia-uvm", "/dev/nvidia1"])
    # A user's own program named like the display server is a job all the same.
    process(proc, 4243, "/home/bob/Xorg", ["/dev/nvidia1"])
    done, textfile = busy(tmp_path, proc)
    # Not 1, which the unit's SuccessExitStatus=1 would count as the condition passing.
    assert done.returncode == 75
    assert "skipped: busy: GPU processes 4242(python3.11) 4243(Xorg)" in done.stdout
    text = textfile.read_text()
    assert 'labrig_verify_skipped_timestamp_seconds{reason="busy"} ' in text
    assert "labrig_verify_busy_processes 2" in text.splitlines()
    assert oct(textfile.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labrig_verify_busy.prom", "proc"]
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_role_is_in_the_provision_playbook_behind_its_opt_in():
    text = (REPO / "playbooks" / "provision.yml").read_text()
    assert "name: monitoring" in text
    assert "when: labrig_monitoring | default(false) | bool" in text


def test_the_service_user_cannot_turn_the_root_helpers_write_against_root(tmp_path):
    """The textfile's folder is the service user's: a symlink planted at any name there must not
    make root write to, or change the mode of, a file elsewhere."""
    proc = tmp_path / "proc"
    process(proc, 4242, "/usr/bin/python3.11", ["/dev/nvidia0"])
    secret = tmp_path / "shadow"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    folder = tmp_path / "textfiles"
    folder.mkdir()
    (folder / "labrig_verify_busy.prom").symlink_to(secret)
    done, written = busy(tmp_path, proc, folder / "labrig_verify_busy.prom")
    assert done.returncode == 75, done.stderr
    assert oct(secret.stat().st_mode & 0o777) == "0o600" and secret.read_text() == "root only\n"
    assert not written.is_symlink() and "labrig_verify_busy_processes 1" in written.read_text()
    # A folder swapped for a link is not written through at all.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = tmp_path / "linked"
    linked.symlink_to(elsewhere)
    done, _ = busy(tmp_path, proc, linked / "labrig_verify_busy.prom")
    assert done.returncode == 75 and "could not record the skip" in done.stderr
    assert list(elsewhere.iterdir()) == []
