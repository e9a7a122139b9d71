#!/usr/bin/python
"""The host side of the one-run-per-host lock (roles/labrig/tasks/lock.yml).

A JSON file, created with O_EXCL so that two runs cannot both take it, names the run that holds
it: its controller, the controller's ansible-playbook process, when it started, and the host's
logind session of its SSH connection. The controller decides whether a holder from the same
controller is still alive (only it can see that process); for a holder from another controller the
host decides: a run whose SSH session has closed is gone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: labrig_lock
short_description: Take, inspect or release the labrig run lock on a host
description:
  - Internal to the labrig roles (tasks/lock.yml, tasks/unlock.yml).
options:
  path: {type: path, required: true, description: The lock file.}
  run: {type: dict, required: true, description: 'This run: run, controller, pid, started.'}
  state: {type: str, choices: [present, absent], default: present, description: Take or release.}
  takeover: {type: str, default: '', description: Replace the lock if that run still holds it.}
  wait: {type: int, default: 0, description: Seconds to wait for a held lock to be released.}
"""

LIVE_SESSION_STATES = {"active", "online"}


def own_session() -> str:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as cgroup:
            for line in cgroup:
                found = re.search(r"/session-([^/.]+)\.scope$", line.strip())
                if found:
                    return found.group(1)
    except OSError:
        pass
    return ""


def session_alive(session: str) -> bool | None:
    """True/False from logind; None when it cannot tell (no session recorded, no loginctl)."""
    if not session:
        return None
    try:
        shown = subprocess.run(
            ["loginctl", "show-session", session, "-p", "State", "--value"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:
        # logind answers "No session ..." for a session that has ended.
        return False if "No session" in shown.stderr or "not known" in shown.stderr else None
    return shown.stdout.strip() in LIVE_SESSION_STATES


def read_holder(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as lock:
            return json.load(lock)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # Half-written by a run cut off mid-write: nobody can be said to hold it.
        return {"run": "", "controller": "?", "started": "?", "unreadable": True}


def create(path: str, content: dict) -> bool:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as lock:
        json.dump(content, lock, sort_keys=True)
        lock.write("\n")
    return True


def replace(path: str, content: dict, expected_run: str) -> bool:
    """Swap in `content` only while `expected_run` holds the lock (a rename, never half-written)."""
    holder = read_holder(path)
    if holder is None or holder.get("run", "") != expected_run:
        return False
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as lock:
        json.dump(content, lock, sort_keys=True)
        lock.write("\n")
    os.replace(temporary, path)
    return True


def stale_elsewhere(holder: dict, mine: dict) -> bool:
    """A holder from another controller whose SSH session here has closed."""
    if holder.get("unreadable"):
        return True
    if holder.get("controller") == mine.get("controller"):
        return False
    return session_alive(str(holder.get("session", ""))) is False


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "run": {"type": "dict", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "takeover": {"type": "str", "default": ""},
            "wait": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    mine = dict(module.params["run"], session=own_session())

    if module.params["state"] == "absent":
        holder = read_holder(path)
        ours = holder is not None and holder.get("run") == mine["run"]
        if ours and not module.check_mode:
            os.unlink(path)
        module.exit_json(changed=False, released=ours, holder=holder)

    holder = read_holder(path)
    if module.check_mode:
        module.exit_json(changed=False, acquired=False, holder=holder, took_over=None)
    if holder is not None and holder.get("run") == mine["run"]:
        module.exit_json(changed=False, acquired=True, holder=holder, took_over=None)

    took_over = None
    deadline = time.monotonic() + max(0, module.params["wait"])
    while True:
        if create(path, mine):
            module.exit_json(changed=False, acquired=True, holder=mine, took_over=took_over)
        holder = read_holder(path)
        if holder is None:
            continue  # released between the two calls: try again at once
        takeover = module.params["takeover"]
        gone = (takeover and holder.get("run") == takeover) or stale_elsewhere(holder, mine)
        if gone and replace(path, mine, holder.get("run", "")):
            module.exit_json(changed=False, acquired=True, holder=mine, took_over=holder)
        if time.monotonic() >= deadline:
            module.exit_json(changed=False, acquired=False, holder=holder, took_over=None)
        time.sleep(5)


if __name__ == "__main__":
    main()
