#!/usr/bin/python3
"""Download apt's package lists; kill the download whole when it runs past its time.

Usage: apt_update.py TIMEOUT_S [MAX_AGE_S]

With MAX_AGE_S, lists younger than that are left as they are (the apt module's cache_valid_time:
the age of APT's update-success stamp, else of the lists directory). Prints `fresh` or `refreshed`;
apt-get's own words pass through, so a failed fetch reads as one. Exit status: apt-get's, or 124
when it ran past TIMEOUT_S and was killed.

Why not the apt module under `async`: async_wrapper moves the module into a process group of its
own only after it has forked it. On a loaded host the module had already started apt by then, so
the kill missed them both, and the orphaned module held the lists' lock for the hour its hung
download method slept. Here apt-get starts in a session of its own before it runs anything, and the
whole process group (apt-get and every download method it started) is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
LISTS_DIR = "/var/lib/apt/lists"
TIMED_OUT = 124


def lists_age_s(now: float) -> float | None:
    for path in (UPDATE_STAMP, LISTS_DIR):
        if os.path.exists(path):
            return now - os.stat(path).st_mtime
    return None


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    timeout_s = int(argv[1])
    max_age_s = int(argv[2]) if len(argv) == 3 else 0
    if max_age_s > 0:
        age = lists_age_s(time.time())
        if age is not None and age < max_age_s:
            print(f"fresh: the lists are {int(age)} s old, younger than {max_age_s} s")
            return 0
    sys.stdout.flush()
    # --error-on=any: a list that could not be fetched fails the update, as in python-apt, instead
    # of a warning and the old list used in silence.
    apt = subprocess.Popen(
        ["apt-get", "update", "-q", "--error-on=any"],
        stdin=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"},
        start_new_session=True,
    )
    try:
        status = apt.wait(timeout=timeout_s if timeout_s > 0 else None)
    except subprocess.TimeoutExpired:
        os.killpg(apt.pid, signal.SIGKILL)
        apt.wait()
        killed = f"timeout exceeded after {timeout_s} s; killed with its download methods"
        print(f"apt-get update: {killed}", file=sys.stderr)
        return TIMED_OUT
    if status == 0:
        print("refreshed")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
