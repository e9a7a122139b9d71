"""labrig_guard_findings: what the live-lab guard's scan (tasks/guard.yml) found, told apart.

Scan lines: `gpu <pid> <user> <executable path> <command line>` for each process holding a GPU
device, `user <name> ...` for each person logged in. A process is:
- a daemon that always holds the GPU (its executable's name in ignore_commands): not counted;
- the desktop (its executable's full path in desktop_executables): the display server and the
  compositor hold /dev/nvidia* for as long as a desktop is up on the card; not a GPU job. A full
  path, so that a user's own program renamed Xorg is still a job (users cannot write /usr/bin);
- anything else: GPU work, someone's job.
"""

from __future__ import annotations

import posixpath


def _printable(text: str) -> str:
    """No control characters (C0, DEL, C1) from a user's command line reach the admin's terminal."""
    return "".join(c for c in text if c.isprintable())


def labrig_guard_findings(
    lines: list[str], ignore_commands: list[str], desktop_executables: list[str]
) -> dict[str, list[str]]:
    """{'jobs': ['<pid> <user> <command line>'], 'desktop': ['<pid> <user> <executable>'],
    'users': ['<name>', ...]} in scan order, users sorted and unique."""
    jobs: list[str] = []
    desktop: list[str] = []
    users: set[str] = set()
    for line in lines:
        fields = _printable(line).split(None, 4)
        if len(fields) >= 2 and fields[0] == "user":
            users.add(fields[1])
            continue
        if len(fields) < 4 or fields[0] != "gpu":
            continue
        pid, user, executable = fields[1], fields[2], fields[3]
        command = fields[4].strip() if len(fields) > 4 else executable
        if posixpath.basename(executable) in ignore_commands:
            continue
        if executable in desktop_executables:
            desktop.append(f"{pid} {user} {executable}")
        else:
            jobs.append(f"{pid} {user} {command}")
    return {"jobs": jobs, "desktop": desktop, "users": sorted(users)}


class FilterModule:
    def filters(self):
        return {"labrig_guard_findings": labrig_guard_findings}
