#!/usr/bin/python
"""The host side of the converged fast path (roles/labrig/tasks/converged.yml).

A run that converges a host leaves a record of what it left there: the digest of its inputs (the
labrig variables and roles, computed on the controller by the action plugin of the same name) and
of the host's state that those inputs manage - file trees hashed by content (apt's configuration,
dpkg's status with its holds, modprobe and linker files, the expectations, systemd units) or by
size and mtime (the virtualenv, the CUDA and cuDNN trees, /boot), the loaded nouveau/nvidia
modules, the NVIDIA PCI devices, the kernel and the units the roles started.

The next run probes first: with the same inputs and the same state, the roles would change
nothing, so the host is left alone in one task. Anything else (no record, another run holding the
lock, a reboot a role asked for, any item that differs) is a full run, and the probe names why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: labrig_converged
short_description: Probe, write or forget the record of a host's last converged labrig run
description:
  - Internal to the labrig roles (tasks/converged.yml, converged_record.yml, converged_forget.yml);
    the action plugin of the same name adds the controller's digest of the run's inputs.
options:
  state:
    type: str
    choices: [probe, present, absent]
    default: probe
    description: Compare the host with its record, write the record, or remove it.
  path: {type: path, required: true, description: The record file.}
  inputs: {type: str, default: '', description: Digest of the run's inputs.}
  enabled: {type: bool, default: true, description: When false the probe says not converged.}
  lock: {type: path, default: '', description: The run lock; held means another run is at work.}
  reboot_marker: {type: path, default: '', description: A role's pending reboot.}
  watch: {type: list, elements: path, default: [], description: Trees compared by content.}
  watch_stat:
    type: list
    elements: path
    default: []
    description: Trees compared by size and mtime.
  units: {type: list, elements: str, default: [], description: Units that must stay as they were.}
"""

SCHEMA = "labrig.converged/1"
# Bigger files are compared by size and mtime: dpkg's status and apt's files are far smaller.
CONTENT_LIMIT = 16 << 20
LABRIG_MODULES = re.compile(r"^(nouveau|nvidia\w*)$")
# Written whenever Python imports from the tree (the verify suite runs from the virtualenv).
SKIPPED_NAMES = {"__pycache__"}
NVIDIA_VENDOR = "0x10de"


def _file_content(path: str, st: os.stat_result) -> str:
    if st.st_size > CONTENT_LIMIT:
        return f"size={st.st_size} mtime={st.st_mtime_ns}"
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        return f"unreadable {error.errno}"
    return digest.hexdigest()


def _entry(path: str, by_content: bool) -> str:
    """One line for a path: its type, mode, owner and either its content or its size and mtime."""
    try:
        st = os.lstat(path)
    except OSError as error:
        return f"missing {error.errno}"
    head = f"{stat.S_IFMT(st.st_mode):o} {stat.S_IMODE(st.st_mode):o} {st.st_uid}:{st.st_gid}"
    if stat.S_ISLNK(st.st_mode):
        return f"{head} -> {os.readlink(path)}"
    if stat.S_ISDIR(st.st_mode):
        return head
    if by_content:
        return f"{head} {_file_content(path, st)}"
    return f"{head} size={st.st_size} mtime={st.st_mtime_ns}"


def tree_digest(root: str, by_content: bool) -> str:
    """The digest of a file or a directory tree (links inside it are not followed; the top is)."""
    digest = hashlib.sha256()
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        digest.update(f".\0{_entry(real, by_content)}\n".encode())
        return digest.hexdigest()
    for folder, dirs, files in os.walk(real, onerror=lambda error: None):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED_NAMES)
        for name in ["", *sorted(name for name in files if not name.endswith(".pyc"))]:
            path = os.path.join(folder, name) if name else folder
            relative = os.path.relpath(path, real)
            digest.update(f"{relative}\0{_entry(path, by_content)}\n".encode())
        # Links to directories are listed by os.walk among dirs but never entered: record them.
        for name in dirs:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                digest.update(
                    f"{os.path.relpath(path, real)}\0{_entry(path, by_content)}\n".encode()
                )
    return digest.hexdigest()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def loaded_modules(proc_modules: str) -> list[str]:
    """The nouveau and nvidia modules in /proc/modules' text (names only: use counts change)."""
    names = (line.split(" ", 1)[0] for line in proc_modules.splitlines() if line.strip())
    return sorted(name for name in names if LABRIG_MODULES.match(name))


def nvidia_devices(pci_root: str = "/sys/bus/pci/devices") -> list[str]:
    devices = []
    try:
        slots = sorted(os.listdir(pci_root))
    except OSError:
        return devices
    for slot in slots:
        folder = os.path.join(pci_root, slot)
        if _read(os.path.join(folder, "vendor")).strip() == NVIDIA_VENDOR:
            devices.append(f"{slot} {_read(os.path.join(folder, 'device')).strip()}")
    return devices


def unit_states(units: list[str]) -> str:
    if not units:
        return ""
    shown = subprocess.run(
        ["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *sorted(units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else f"systemctl exited {shown.returncode}"


def state_items(watch: list[str], watch_stat: list[str], units: list[str]) -> dict[str, str]:
    """Each item of the state a converged run leaves, as a short digest or value."""
    items = {
        "kernel": _read("/proc/sys/kernel/osrelease").strip(),
        "modules": " ".join(loaded_modules(_read("/proc/modules"))),
        "nvidia devices": "; ".join(nvidia_devices()),
        "cpus": str(os.cpu_count()),
    }
    for path in watch:
        items[path] = tree_digest(path, by_content=True)
    for path in watch_stat:
        items[path] = tree_digest(path, by_content=False)
    if units:
        items["units"] = hashlib.sha256(unit_states(units).encode()).hexdigest()
    return items


def read_record(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("schema") == SCHEMA else None


def compare(record: dict | None, inputs: str, items: dict[str, str]) -> str:
    """Why the host is not converged ('' when it is)."""
    if record is None:
        return "no record of a converged run"
    if record.get("inputs") != inputs:
        return "the inputs changed since the record (labrig variables or roles)"
    recorded = record.get("items", {})
    differ = sorted(set(recorded) ^ set(items) | {k for k in items if recorded.get(k) != items[k]})
    return f"changed since the record: {', '.join(differ)}" if differ else ""


def probe(params: dict) -> dict:
    if not params["enabled"]:
        return {
            "converged": False,
            "reason": "the fast path is off (labrig_fast_path, tags or --check)",
        }
    if params["lock"] and os.path.lexists(params["lock"]):
        return {"converged": False, "reason": f"another run holds the host ({params['lock']})"}
    if params["reboot_marker"] and os.path.exists(params["reboot_marker"]):
        return {"converged": False, "reason": f"a reboot is pending ({params['reboot_marker']})"}
    record = read_record(params["path"])
    if record is None or record.get("inputs") != params["inputs"]:
        return {"converged": False, "reason": compare(record, params["inputs"], {})}
    items = state_items(
        record.get("watch", []), record.get("watch_stat", []), record.get("units", [])
    )
    reason = compare(record, params["inputs"], items)
    return {"converged": not reason, "reason": reason, "recorded": record.get("written", "")}


def write_record(params: dict) -> dict:
    items = state_items(params["watch"], params["watch_stat"], params["units"])
    record = {
        "schema": SCHEMA,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": params["inputs"],
        "watch": params["watch"],
        "watch_stat": params["watch_stat"],
        "units": sorted(params["units"]),
        "items": items,
    }
    folder = os.path.dirname(params["path"]) or "."
    os.makedirs(folder, mode=0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".converged.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=1, sort_keys=True)
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, params["path"])
    except BaseException:
        os.unlink(temporary)
        raise
    return {"recorded": record["written"], "items": sorted(items)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["probe", "present", "absent"], "default": "probe"},
            "path": {"type": "path", "required": True},
            "inputs": {"type": "str", "default": ""},
            "enabled": {"type": "bool", "default": True},
            "lock": {"type": "path", "default": ""},
            "reboot_marker": {"type": "path", "default": ""},
            "watch": {"type": "list", "elements": "path", "default": []},
            "watch_stat": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    # The record is labrig's own bookkeeping, not a change to the host: never reported as changed.
    if params["state"] == "probe":
        module.exit_json(changed=False, **probe(params))
    if module.check_mode:
        module.exit_json(changed=False, skipped_write=True)
    if params["state"] == "absent":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(params["path"])
        module.exit_json(changed=False)
    module.exit_json(changed=False, **write_record(params))


if __name__ == "__main__":
    main()
