"""Where a provision run's time goes, from its own log (benchmarks/fleet.sh).

The log is ansible-playbook's output with the profile_tasks callback, which stamps every task with
the time the one before it took. The first run of the log is split into:
- the tasks that do what a plain `apt-get install` + `pip install` does (PLAIN_WORK below),
- the other tasks that ran a module on the host (took at least HOST_TASK_S),
- the rest (controller-only tasks, skipped tasks, includes).
With `--plain SECONDS` it also prints the plain-work tasks' time as a multiple of the plain install;
with `--wall SECONDS` (the whole run's) too, the run less its other host tasks as that multiple:
what labrig would take were every one of them free, the least any trimming of them can reach.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# The light profile's installs: the package lists, its two apt transactions and pip.
PLAIN_WORK = (
    re.compile(r"^apt_sources : Download package lists"),
    re.compile(r"^mkl : Install the BLAS packages$"),
    re.compile(r"^mxnet : Install the Python virtualenv tooling"),
    re.compile(r"^labrig : Install with the sha256 of every file checked the set mxnet$"),
)
# A task that ran nothing on a host takes a few tens of milliseconds on the controller.
HOST_TASK_S = 0.1
_TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\] \**$")
_STAMP = re.compile(r"\((?P<h>\d+):(?P<m>\d+):(?P<s>\d+\.\d+)\)\s+\d+:\d+:\d+\.\d+ \*+\s*$")


def task_times(log: str) -> list[tuple[str, float]]:
    """(task name, seconds) for every task of the log's first run, in order."""
    times: list[tuple[str, float]] = []
    current = previous = None
    for line in log.splitlines():
        if line.startswith("PLAY RECAP"):
            break
        task = _TASK.match(line)
        if task:
            current = task["name"]
            continue
        stamp = _STAMP.search(line)
        if stamp:
            if previous is not None:
                seconds = int(stamp["h"]) * 3600 + int(stamp["m"]) * 60 + float(stamp["s"])
                times.append((previous, seconds))
            previous = current
    return times


def breakdown(times: list[tuple[str, float]]) -> dict[str, tuple[int, float]]:
    parts = {"plain work": [0, 0.0], "other host tasks": [0, 0.0], "the rest": [0, 0.0]}
    for name, seconds in times:
        if any(pattern.search(name) for pattern in PLAIN_WORK):
            part = "plain work"
        elif seconds >= HOST_TASK_S:
            part = "other host tasks"
        else:
            part = "the rest"
        parts[part][0] += 1
        parts[part][1] += seconds
    return {part: (count, seconds) for part, (count, seconds) in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--plain", type=float, default=0.0, help="the plain install's seconds")
    parser.add_argument("--wall", type=float, default=0.0, help="the whole run's seconds")
    args = parser.parse_args(argv)
    parts = breakdown(task_times(args.log.read_text(errors="replace")))
    count, seconds = parts["plain work"]
    if count != len(PLAIN_WORK):
        print(f"task_times: found {count} of the {len(PLAIN_WORK)} install tasks", file=sys.stderr)
        return 1
    ratio = f" = {seconds / args.plain:.2f} x plain" if args.plain > 0 else ""
    print(f"  of the first run: the {count} install tasks {seconds:.1f} s{ratio}", end="")
    count, seconds = parts["other host tasks"]
    print(f"; {count} other tasks on the host {seconds:.1f} s", end="")
    count, seconds = parts["the rest"]
    print(f"; {count} controller-only or skipped tasks {seconds:.1f} s")
    if args.plain > 0 and args.wall > 0:
        count, seconds = parts["other host tasks"]
        rest = args.wall - seconds
        print(
            f"  the run less its {count} other host tasks: {rest:.1f} s"
            f" = {rest / args.plain:.2f} x plain"
            " (the install tasks, the controller-only tasks and ansible-playbook's start)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
