"""The converged fast path (roles/labrig: library/labrig_converged.py, its action plugin, the
converged*.yml tasks, and the summary's lines): a host as its last converged run left it - same
inputs, same state - is left alone after one task; any drift, a held lock, a pending reboot or
FULL=1 is a full run, and the summary says why."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from role_support import REPO, run_tasks


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


converged = _load("labrig_converged_module", REPO / "roles/labrig/library/labrig_converged.py")
inputs = _load("labrig_converged_action", REPO / "roles/labrig/action_plugins/labrig_converged.py")
summary = _load("labrig_summary_callback", REPO / "plugins/callback/labrig_summary.py")


# --- the host's state ---------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    (root / "apt.conf.d").mkdir(parents=True)
    (root / "apt.conf.d" / "01proxy").write_text('Acquire::http::Proxy "http://10.0.0.1:3142";\n')
    (root / "sources.list").write_text("deb http://deb.example/debian bookworm main\n")
    (root / "keyring").symlink_to("sources.list")
    return root


def test_a_tree_digest_is_stable_and_sees_content_mode_and_links(tmp_path: Path) -> None:
    root = _tree(tmp_path / "etc")
    first = converged.tree_digest(str(root), by_content=True)
    first_by_stat = converged.tree_digest(str(root), by_content=False)
    assert converged.tree_digest(str(root), by_content=True) == first

    proxy = root / "apt.conf.d" / "01proxy"
    stat = proxy.stat()
    proxy.write_text('Acquire::http::Proxy "http://10.0.0.2:3142";\n')
    os.utime(proxy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime
    assert converged.tree_digest(str(root), by_content=True) != first
    # By size and mtime, the same edit is not seen: that mode is for trees too big to hash daily.
    assert converged.tree_digest(str(root), by_content=False) == first_by_stat

    edited = converged.tree_digest(str(root), by_content=True)
    proxy.chmod(0o600)
    assert converged.tree_digest(str(root), by_content=True) != edited
    moved = converged.tree_digest(str(root), by_content=True)
    (root / "keyring").unlink()
    (root / "keyring").symlink_to("apt.conf.d")
    assert converged.tree_digest(str(root), by_content=True) != moved


def test_python_caches_written_by_imports_are_not_drift(tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "lib" / "mxnet"
    venv.mkdir(parents=True)
    (venv / "__init__.py").write_text("")
    before = converged.tree_digest(str(tmp_path / "venv"), by_content=False)
    (venv / "__pycache__").mkdir()
    (venv / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    (venv / "stray.pyc").write_bytes(b"\0")
    assert converged.tree_digest(str(tmp_path / "venv"), by_content=False) == before
    (venv / "base.py").write_text("x = 1\n")
    assert converged.tree_digest(str(tmp_path / "venv"), by_content=False) != before


def test_a_missing_path_has_a_digest_of_its_own(tmp_path: Path) -> None:
    missing = converged.tree_digest(str(tmp_path / "cuda"), by_content=False)
    (tmp_path / "cuda").mkdir()
    assert converged.tree_digest(str(tmp_path / "cuda"), by_content=False) != missing


def test_only_the_nouveau_and_nvidia_modules_count_by_name() -> None:
    proc_modules = (
        "nvidia_uvm 1441792 0 - Live 0x0000000000000000 (POE)\n"
        "nvidia 56864768 2 nvidia_uvm, Live 0x0000000000000000 (POE)\n"
        "ext4 1011712 1 - Live 0x0000000000000000\n"
        "nouveau 2465792 7 - Live 0x0000000000000000\n"
    )
    assert converged.loaded_modules(proc_modules) == ["nouveau", "nvidia", "nvidia_uvm"]


def test_nvidia_devices_are_read_from_sysfs(tmp_path: Path) -> None:
    for slot, vendor, device in [
        ("0000:17:00.0", "0x10de", "0x2335"),
        ("0000:00:1f.0", "0x8086", "0x1234"),
    ]:
        (tmp_path / slot).mkdir()
        (tmp_path / slot / "vendor").write_text(vendor + "\n")
        (tmp_path / slot / "device").write_text(device + "\n")
    assert converged.nvidia_devices(str(tmp_path)) == ["0000:17:00.0 0x2335"]


# --- the probe's verdicts -----------------------------------------------------------------------


def _params(tmp_path: Path, **overrides) -> dict:
    return {
        "path": str(tmp_path / "converged.json"),
        "inputs": "inputs-1",
        "enabled": True,
        "lock": str(tmp_path / "provision.lock"),
        "reboot_marker": str(tmp_path / "reboot-required"),
        "watch": [str(tmp_path / "etc")],
        "watch_stat": [str(tmp_path / "venv")],
        "units": [],
        **overrides,
    }


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    _tree(tmp_path / "etc")
    (tmp_path / "venv").mkdir()
    converged.write_record(_params(tmp_path))
    return tmp_path


def test_a_host_as_its_record_left_it_is_converged(recorded: Path) -> None:
    record = json.loads((recorded / "converged.json").read_text())
    assert oct((recorded / "converged.json").stat().st_mode & 0o777) == "0o600"
    assert record["schema"] == "labrig.converged/1" and record["inputs"] == "inputs-1"

    verdict = converged.probe(_params(recorded))

    assert verdict == {"converged": True, "reason": "", "recorded": record["written"]}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda root: (root / "etc" / "sources.list").write_text("edited\n"),
            "changed since the record: ",
        ),
        (lambda root: (root / "venv" / "new.py").write_text(""), "changed since the record: "),
        (lambda root: (root / "provision.lock").write_text("{}"), "another run holds the host"),
        (lambda root: (root / "reboot-required").write_text("x"), "a reboot is pending"),
        (lambda root: (root / "converged.json").unlink(), "no record of a converged run"),
        (lambda root: (root / "converged.json").write_text("{"), "no record of a converged run"),
    ],
)
def test_any_difference_is_a_full_run_and_says_why(recorded: Path, change, reason: str) -> None:
    change(recorded)

    verdict = converged.probe(_params(recorded))

    assert verdict["converged"] is False
    assert verdict["reason"].startswith(reason), verdict


def test_the_reason_names_what_changed(recorded: Path) -> None:
    (recorded / "etc" / "sources.list").write_text("edited\n")

    verdict = converged.probe(_params(recorded))

    assert verdict["reason"] == f"changed since the record: {recorded / 'etc'}"


def test_other_inputs_or_the_fast_path_off_are_full_runs(recorded: Path) -> None:
    assert converged.probe(_params(recorded, inputs="inputs-2"))["reason"].startswith(
        "the inputs changed"
    )
    assert converged.probe(_params(recorded, enabled=False))["reason"].startswith(
        "the fast path is off"
    )


def test_the_probe_compares_the_recorded_watch_list_not_the_callers(recorded: Path) -> None:
    # A record lists what it covers; the probe (which passes no lists) checks exactly that.
    (recorded / "elsewhere").write_text("not watched\n")
    assert converged.probe(_params(recorded, watch=[], watch_stat=[]))["converged"] is True


# --- the inputs (controller side) ---------------------------------------------------------------


def test_the_inputs_are_the_role_variables_without_the_run_options() -> None:
    task_vars = {
        "mxnet_install_method": "pip",
        "labrig_blas": "openblas",
        "labrig_batch": "1,25%",
        "labrig_maintenance_ok": True,
        "labrig_fast_path": False,
        "ansible_host": "10.0.0.5",
        "inventory_hostname": "ws01",
        "mxnetish": 1,
    }
    chosen = inputs.role_variables(task_vars, inputs.role_names())
    assert chosen == {"mxnet_install_method": "pip", "labrig_blas": "openblas"}


def test_the_inputs_digest_follows_variables_and_code(tmp_path: Path) -> None:
    project = tmp_path / "labrig"
    (project / "roles" / "mxnet" / "tasks").mkdir(parents=True)
    (project / "roles" / "mxnet" / "tasks" / "main.yml").write_text("---\n")
    (project / "playbooks").mkdir()
    (project / "playbooks" / "provision.yml").write_text("---\n")
    base = {"mxnet_install_method": "pip", "labrig_batch": "1"}

    first = inputs.inputs_digest(base, project)

    assert inputs.inputs_digest({**base, "labrig_batch": "25%"}, project) == first
    assert inputs.inputs_digest({**base, "mxnet_install_method": "source"}, project) != first
    (project / "roles" / "mxnet" / "tasks" / "__pycache__").mkdir()
    (project / "roles" / "mxnet" / "tasks" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert inputs.inputs_digest(base, project) == first
    (project / "playbooks" / "provision.yml").write_text("---\n# edited\n")
    assert inputs.inputs_digest(base, project) != first


# --- through Ansible: the tasks the playbook runs -----------------------------------------------


def test_record_probe_and_drift_through_the_role(tmp_path: Path) -> None:
    root = tmp_path / "host"
    _tree(root / "etc")
    (root / "venv").mkdir()
    host_vars = {
        "labrig_converged_record": str(root / "converged.json"),
        "labrig_converged_watch": [str(root / "etc")],
        "labrig_converged_watch_stat": [str(root / "boot")],
        "labrig_converged_trees": [str(root / "venv")],
        "labrig_lock_file": str(root / "provision.lock"),
        "labrig_reboot_marker": str(root / "reboot-required"),
        "mxnet_install_method": "pip",
    }
    probe = {"ansible.builtin.import_role": {"name": "labrig", "tasks_from": "converged"}}
    tasks = [
        {**probe, "name": "First probe"},
        {
            "name": "Record",
            "ansible.builtin.import_role": {"name": "labrig", "tasks_from": "converged_record"},
        },
        {**probe, "name": "Second probe"},
        {
            "name": "Drift",
            "ansible.builtin.copy": {"dest": str(root / "etc" / "sources.list"), "content": "x\n"},
        },
        {**probe, "name": "Third probe"},
        {
            "name": "Forget",
            "ansible.builtin.import_role": {"name": "labrig", "tasks_from": "converged_forget"},
        },
    ]
    name = "labrig : Compare the host with the record of its last converged run"

    run = run_tasks(tmp_path / "play", tasks, {"ws01": host_vars})

    assert run.returncode == 0, run.stdout[-3000:]
    probes = [result for task, result in run.host_results("ws01") if task == name]
    assert [result["converged"] for result in probes] == [False, True, False], probes
    assert probes[0]["reason"] == "no record of a converged run"
    assert probes[2]["reason"] == f"changed since the record: {root / 'etc'}"
    assert all(result.get("changed") is False for result in probes)
    assert probes[1]["ansible_facts"]["labrig_converged"] is True
    assert not (root / "converged.json").exists()


def test_check_mode_and_tags_never_take_the_fast_path(tmp_path: Path) -> None:
    host_vars = {"labrig_converged_record": str(tmp_path / "converged.json")}
    # As in playbooks/provision.yml: the probe is an `always` task.
    probe = {
        "ansible.builtin.import_role": {"name": "labrig", "tasks_from": "converged"},
        "tags": ["always"],
    }
    name = "labrig : Compare the host with the record of its last converged run"

    checked = run_tasks(tmp_path / "check", [probe], {"ws01": host_vars}, extra_args=("--check",))
    tagged = run_tasks(
        tmp_path / "tags", [probe], {"ws01": host_vars}, extra_args=("--tags", "mxnet")
    )

    assert checked.result("ws01", name).get("skipped") is True
    assert tagged.result("ws01", name)["reason"].startswith("the fast path is off"), tagged.stdout


# --- the summary --------------------------------------------------------------------------------


class _Display:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def banner(self, text: str) -> None:
        self.lines.append(f"== {text}")

    def display(self, text: str) -> None:
        self.lines.append(text)


def _result(host: str, task: str, payload: dict) -> SimpleNamespace:
    return SimpleNamespace(
        _host=SimpleNamespace(get_name=lambda: host),
        _task=SimpleNamespace(get_name=lambda: task),
        _result=payload,
    )


def test_the_summary_names_converged_hosts_and_why_others_ran_in_full() -> None:
    callback = summary.CallbackModule()
    callback._display = _Display()
    callback._active = True
    callback._targets = ["ws01", "ws02"]
    callback._in_play = summary.PROVISION_PLAYS[0]
    probe = f"labrig : {summary.PROBE_TASK}"
    callback.v2_runner_on_ok(_result("ws01", probe, {"converged": True, "recorded": "T1"}))
    callback.v2_runner_on_ok(
        _result("ws02", probe, {"converged": False, "reason": "changed since the record: /etc/apt"})
    )
    callback._in_play = summary.PROVISION_PLAYS[1]
    callback._provisioning = set()
    callback.v2_runner_on_ok(_result("ws02", "Install", {}))

    callback.v2_playbook_on_stats(SimpleNamespace(processed={"ws01": {}, "ws02": {}}))

    assert callback._display.lines == [
        "== LABRIG SUMMARY",
        "every host was provisioned (2)",
        "ws01: converged as its run of T1 left it; nothing run (FULL=1 runs every task)",
        "ws02: full run: changed since the record: /etc/apt",
    ]
