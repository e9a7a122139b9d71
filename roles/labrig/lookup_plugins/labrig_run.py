"""labrig_run: who is running this labrig run, for the run lock (tasks/lock.yml).

`lookup('labrig_run')` -> {'controller': 'user@host', 'pid': the ansible-playbook process,
'pid_started': its start time as `ps -o lstart=` prints it}. `lookup('labrig_run', pid)` -> that
process's start time, '' when it has exited: a pid reused by another process starts at another
time, so the pair names one process for good.

A lookup runs in a worker that ansible-playbook forked: the run's process is the topmost
ansible-playbook among this one's ancestors. Read from /proc and `ps` with an argument list; no
shell is involved."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: labrig_run
short_description: this run's controller, ansible-playbook process and start time
description: With no term, this run's identity; with a pid, that process's start time.
options:
  _terms:
    description: process ids whose start time to return
    required: false
"""


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            # The command name may hold spaces and parentheses: the fields follow the last ")".
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def run_process(start: int) -> int:
    pid = start
    while (parent := parent_of(pid)) and "ansible-playbook" in command_line(parent):
        pid = parent
    return pid


def process_started(pid: int) -> str:
    if pid <= 0:
        return ""
    shown = subprocess.run(
        ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return shown.stdout.strip()


def this_run() -> dict:
    pid = run_process(os.getpid())
    return {
        "controller": f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}",
        "pid": pid,
        "pid_started": process_started(pid),
    }


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            return [process_started(int(term)) for term in terms]
        return [this_run()]
