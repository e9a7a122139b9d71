"""Follow the MXNet build that runs on the host in the background, printing its progress on the
controller every `interval` seconds, until make has exited or `timeout` has passed.

One task, one loop here: a task file that includes itself once per poll nests 360 levels deep in
a 6-hour build. The build is known by its lock file, which the make wrapper holds (flock) for as
long as make runs, so a build started by an earlier, interrupted run is followed the same way as
one started a moment ago. Each poll is one command on the host: wait up to `interval` seconds for
the lock, then measure.
"""

from __future__ import annotations

import json
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

# Prints one JSON line: whether make has exited (the lock is free), its exit code, and progress.
# oneDNN (3rdparty/mkldnn, its own cmake build) comes first in 1.9.1 and takes half an hour: its
# objects are counted apart from MXNet's own, with cmake's last percentage from the log.
POLL = r"""
cd {src} || exit 3
# Free lock: make has exited - unless the wrapper has not taken it yet (no pid, no exit code).
if flock -w {interval} {lock} true; then
  if [ -e {rc_file} ] || [ -e {pid_file} ]; then finished=1; else finished=0; sleep 1; fi
else
  finished=0
fi
rc=$(cat {rc_file} 2>/dev/null || echo '')
count() {{ find "$@" 2>/dev/null | wc -l; }}
mx_done=$(count build -name '*.o')
mx_total=$(count src \( -name '*.cc' -o -name '*.cu' \))
dnn_done=$(count 3rdparty/mkldnn/build -name '*.o')
dnn_total=$(count 3rdparty/mkldnn/src \( -name '*.cpp' -o -name '*.c' \))
percent=$(tail -n 400 {log} 2>/dev/null | grep -o '^\[ *[0-9]*%\]' | tail -n 1 | tr -dc '0-9')
last=$(tail -n 1 {log} 2>/dev/null | cut -c1-160 | tr -d '"\\{{}}')
printf '{{"finished": %s, "rc": "%s", "mx_done": %s, "mx_total": %s, "dnn_done": %s, ' \
  "$finished" "$rc" "$mx_done" "$mx_total" "$dnn_done"
printf '"dnn_total": %s, "percent": "%s", "last": "%s"}}\n' "$dnn_total" "$percent" "$last"
"""


def describe(poll: dict, onednn: bool) -> str:
    mxnet = f"MXNet objects {poll['mx_done']}/{poll['mx_total']}"
    parts = []
    if onednn and poll["dnn_total"]:
        stage = "oneDNN" if poll["mx_done"] == 0 else "oneDNN (done)"
        cmake = f", cmake {poll['percent']}%" if poll["percent"] and poll["mx_done"] == 0 else ""
        parts.append(f"{stage} objects {poll['dnn_done']}/{poll['dnn_total']}{cmake}")
    parts.append(mxnet)
    return "; ".join(parts) + f"; last log line: {poll['last']}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (
            "src_dir",
            "lock",
            "rc_file",
            "pid_file",
            "log",
            "interval",
            "timeout",
            "onednn",
            "attached",
        )
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        interval = max(1, int(args.get("interval", 60)))
        timeout = int(args.get("timeout", 21600))
        onednn = bool(args.get("onednn", True))
        host = task_vars.get("inventory_hostname", "?")
        command = POLL.format(
            src=shlex.quote(args["src_dir"]),
            lock=shlex.quote(args["lock"]),
            rc_file=shlex.quote(args["rc_file"]),
            pid_file=shlex.quote(args["pid_file"]),
            log=shlex.quote(args["log"]),
            interval=interval,
        )
        if args.get("attached"):
            display.display(f"{host}: following the MXNet build an earlier run started")
        started = time.monotonic()
        polls = 0
        while True:
            out = self._low_level_execute_command(
                f"/bin/bash -c {shlex.quote(command)}", sudoable=True
            )
            polls += 1
            try:
                poll = json.loads(out["stdout"].strip().splitlines()[-1])
            except (ValueError, IndexError) as error:
                raise AnsibleActionFail(
                    f"mxnet: could not read the build's state on the host: {out.get('stderr', '')}"
                    f" {out.get('stdout', '')}"
                ) from error
            progress = describe(poll, onednn)
            finished = bool(poll["finished"])
            display.display(
                f"{host}: MXNet build {'finished' if finished else 'running'}: {progress}"
            )
            if finished:
                rc = int(poll["rc"]) if str(poll["rc"]).strip().lstrip("-").isdigit() else -1
                result.update(
                    finished=1,
                    make_rc=rc,
                    progress=progress,
                    polls=polls,
                    changed=True,
                    msg=""
                    if rc == 0
                    else f"make exited {rc}"
                    if rc >= 0
                    else "make left no exit code",
                )
                return result
            if time.monotonic() - started > timeout:
                result.update(
                    finished=0,
                    make_rc=-1,
                    progress=progress,
                    polls=polls,
                    changed=True,
                    msg=f"the build did not finish within {timeout} s",
                )
                return result
