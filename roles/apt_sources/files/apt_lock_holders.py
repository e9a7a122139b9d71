#!/usr/bin/python3
"""Print who holds apt's or dpkg's locks, one line each: `<lock> <pid> <command line>`.

Whoever works with the package system holds these locks (apt, dpkg, unattended-upgrade's real
run, a packagekit transaction); a process's name says nothing, since unattended-upgrades.service
keeps `unattended-upgrade-shutdown --wait-for-signal` (comm `unattended-upgr`) running as long as
the host is up. F_GETLK asks the kernel who holds each lock without taking it. Prints nothing
when the package system is free; exits 0 either way."""

from __future__ import annotations

import fcntl
import os
import struct
import sys

# struct flock: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t), native alignment.
FLOCK = "hhqqi"


def holder(path: str) -> int | None:
    """The pid holding a write-conflicting lock on path (-1 for an open file description lock),
    or None when it is free or does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        probe = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe + b"\0" * 8)
    finally:
        os.close(fd)
    lock_type, _whence, _start, _length, pid = struct.unpack_from(FLOCK, answer)
    return None if lock_type == fcntl.F_UNLCK else pid


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            raw = cmdline.read(200)
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    # Never pass a terminal escape from a user's process on to the admin's screen.
    return "".join(c for c in text if c.isprintable())[:120] or "?"


def main(paths: list[str]) -> int:
    for path in paths:
        pid = holder(path)
        if pid is not None:
            held_by = command_line(pid) if pid > 0 else "(open file description lock)"
            print(f"{path} {pid} {held_by}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
