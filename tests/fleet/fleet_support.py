"""Helpers the fleet tests share: run a command against the fleet, read PLAY RECAP, reach hosts.

Kept free of pytest so that `benchmarks/` and the lead's own scripts can import it too.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLEET_SH = REPO / "tests" / "fleet" / "fleet.sh"

_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s*:\s*(?P<counts>(?:\w+=\d+\s*)+)$")


def playbook_exists(name: str) -> bool:
    return (REPO / "playbooks" / name).is_file()


def parse_play_recap(output: str) -> dict[str, dict[str, int]]:
    """Per-host counters from the last PLAY RECAP in ansible-playbook output.

    >>> parse_play_recap("PLAY RECAP ***\\nws1 : ok=3 changed=1 unreachable=0 failed=0\\n")
    {'ws1': {'ok': 3, 'changed': 1, 'unreachable': 0, 'failed': 0}}
    """
    start = output.rfind("PLAY RECAP")
    if start < 0:
        return {}
    recap: dict[str, dict[str, int]] = {}
    for line in output[start:].splitlines()[1:]:
        line = line.strip()
        if not line:
            if recap:
                break
            continue
        match = _RECAP_LINE.match(line)
        if not match:
            break
        counts = dict(pair.split("=", 1) for pair in match["counts"].split())
        recap[match["host"]] = {key: int(value) for key, value in counts.items()}
    return recap


@dataclass
class Completed:
    """What a command against the fleet did, with the output kept for assertion messages."""

    args: list[str]
    returncode: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        return parse_play_recap(self.output)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])

    def explain(self) -> str:
        return f"$ {shlex.join(self.args)}\nexit {self.returncode} after {self.seconds:.0f} s\n" + (
            self.tail()
        )


def run(args: list[str], timeout: float = 3600, env: dict[str, str] | None = None) -> Completed:
    """Run a command from the repository root, stdout and stderr merged, never raising on exit."""
    started = time.monotonic()
    merged_env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
    process = subprocess.run(
        args,
        cwd=REPO,
        env=merged_env,
        # Ansible refuses a non-blocking stdin, which the caller's may be: no command reads it.
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    completed = Completed(args, process.returncode, process.stdout, time.monotonic() - started)
    _keep_output(completed)
    return completed


def _keep_output(completed: Completed) -> None:
    """Every command's output in LABRIG_E2E_LOG_DIR (set by e2e.sh), for timings and post-mortems:
    a passing test's output is otherwise never shown."""
    folder = os.environ.get("LABRIG_E2E_LOG_DIR")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    number = len(list(Path(folder).glob("*.log"))) + 1
    program = Path(completed.args[0]).name
    words = [arg for arg in completed.args[1:] if not arg.startswith("-") and "=" not in arg]
    subject = Path(words[0]).stem if words and program != "ssh" else ""
    log = Path(folder) / f"{number:03d}-{program}-{subject}.log".replace("-.log", ".log")
    head = completed.explain().split("\n", 2)[:2]
    log.write_text("\n".join([*head, completed.output]))


def make(target: str, inventory: Path | str, timeout: float = 3600, **variables: str) -> Completed:
    """`make TARGET INVENTORY=... NAME=value...`, the way an operator runs labrig."""
    assignments = [f"{name}={value}" for name, value in variables.items()]
    return run(
        ["make", "--no-print-directory", target, f"INVENTORY={inventory}", *assignments],
        timeout=timeout,
    )


def start_interruptible(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a command in its own process group, so the whole group can be killed mid-run."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the caller through the process
    return subprocess.Popen(
        args,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    process.wait(timeout=60)


def _read_inventory(inventory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(host name → address, fleet vars) from the ini inventory that fleet.sh writes."""
    hosts: dict[str, str] = {}
    variables: dict[str, str] = {}
    section = ""
    for raw in inventory.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "fleet":
            name, *pairs = line.split()
            fields = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            hosts[name] = fields.get("ansible_host", name)
        elif section == "fleet:vars" and "=" in line:
            key, value = line.split("=", 1)
            variables[key.strip()] = value.strip().strip("'\"")
    return hosts, variables


# Paths a provisioning run would change; anything under them newer than the marker is a change.
WATCHED_PATHS = "/etc /usr /opt /boot /var/lib/dpkg /var/lib/apt/lists"
_MARKER = "/run/labrig-e2e-unchanged-since"


class Fleet:
    """A running fleet, known only through the inventory that `fleet.sh up` wrote."""

    def __init__(self, inventory: Path | str) -> None:
        self.inventory = Path(inventory)
        self.hosts, self.vars = _read_inventory(self.inventory)
        # fleet.sh keeps each fleet's state in /run/labrig-fleet/<name>/.
        self.name = self.inventory.parent.name

    def ssh_args(self, host: str, user: str = "") -> list[str]:
        """The ssh command line to a host, as the inventory's user unless another is named."""
        return [
            "ssh",
            "-i",
            self.vars["ansible_ssh_private_key_file"],
            *shlex.split(self.vars.get("ansible_ssh_common_args", "")),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"{user or self.vars.get('ansible_user', 'root')}@{self.hosts[host]}",
        ]

    def ssh(self, host: str, command: str, timeout: float = 120) -> Completed:
        """Run a shell command on a host as the inventory's (unprivileged) user."""
        return run([*self.ssh_args(host), command], timeout=timeout)

    def harness(self, command: str, *args: str, timeout: float = 600) -> Completed:
        """`fleet.sh COMMAND ARGS` for this fleet (stop/start a host, status)."""
        return run(
            [str(FLEET_SH), command, *args], timeout=timeout, env={"LABRIG_FLEET": self.name}
        )

    def mark_unchanged(self, hosts: list[str] | None = None) -> None:
        for host in hosts or list(self.hosts):
            result = self.ssh(host, f"sudo touch {_MARKER}")
            assert result.returncode == 0, result.explain()

    def changed_paths(self, host: str) -> list[str]:
        """Files under WATCHED_PATHS that changed since mark_unchanged()."""
        result = self.ssh(
            host,
            f"sudo find {WATCHED_PATHS} -xdev -newer {_MARKER} "
            "! -path '/var/lib/dpkg/lock*' ! -path '/var/lib/apt/lists/lock' -print 2>/dev/null "
            "| head -n 20",
        )
        assert result.returncode == 0, result.explain()
        return [line for line in result.output.splitlines() if line.startswith("/")]
