"""What a lab in use does to a provisioning run, staged on the fleet for test_e2e.py's live-lab
stage: power cut during the heavy host's DKMS build, a user logged in with a job on the GPU, the
package mirror going away. Free of pytest, like fleet_support.py.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from pathlib import Path

from fleet_support import REPO, Completed, Fleet, kill_group, start_interruptible

# A DKMS build of the NVIDIA module, as dpkg's postinst or `dkms autoinstall` runs it.
DKMS_BUILDING = "pgrep -af '/usr/sbin/dkms (build|install|autoinstall)'"
# Long enough to be well inside the build (it takes minutes here), short enough to waste little.
CUT_AFTER_S = 20


class HeavyProvision(threading.Thread):
    """`make provision HOST=<heavy>` in the background, with the power cut (cut_power) while DKMS
    builds the NVIDIA module, the host powered on again and provisioned until a run succeeds (at
    most three runs). Each run's output is kept; `power_cut` says what was building when the power
    went."""

    def __init__(
        self,
        fleet: Fleet,
        inventory: Path,
        host: str,
        log_dir: Path,
        timeout: float,
        cut_power: bool = True,
    ):
        super().__init__(name=f"provision {host}", daemon=True)
        self.fleet, self.inventory, self.host = fleet, inventory, host
        self.cut_power = cut_power
        self.log_dir, self.timeout = log_dir, timeout
        self.runs: list[Completed] = []
        self.power_cut = ""
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self._provision()
        except BaseException as error:  # re-raised where the test joins the thread
            self.error = error
        self.seconds = time.monotonic() - started

    def _provision(self) -> None:
        deadline = time.monotonic() + self.timeout
        for attempt in range(3):
            log = self.log_dir / f"{self.host}-run{attempt + 1}.log"
            args = [
                "make",
                "--no-print-directory",
                "provision",
                f"INVENTORY={self.inventory}",
                f"HOST={self.host}",
            ]
            process = start_interruptible(args, log)
            begun, cut_now = time.monotonic(), False
            while process.poll() is None:
                if time.monotonic() > deadline:
                    kill_group(process)
                    raise TimeoutError(f"{self.host}: no converged provision in {self.timeout} s")
                if self.cut_power and not self.power_cut and self._dkms_building():
                    time.sleep(CUT_AFTER_S)
                    building = self.fleet.ssh(self.host, DKMS_BUILDING, timeout=30)
                    if building.returncode == 0:
                        cut = self.fleet.harness("kill", self.host)
                        if cut.returncode != 0:
                            raise AssertionError(cut.explain())
                        self.power_cut, cut_now = building.output.strip(), True
                time.sleep(5)
            self.runs.append(
                Completed(args, process.returncode, log.read_text(), time.monotonic() - begun)
            )
            if cut_now:
                start = self.fleet.harness("start", self.host)
                if start.returncode != 0:
                    raise AssertionError(start.explain())
            elif process.returncode == 0 or not self.cut_power:
                # Without a power cut a failed run is the result: rerunning would hide it.
                return

    def _dkms_building(self) -> bool:
        return self.fleet.ssh(self.host, DKMS_BUILDING, timeout=30).returncode == 0


# apt's download method, while apt (or the apt module's python-apt) fetches from the mirror.
APT_DOWNLOADING = "pgrep -af /usr/lib/apt/methods/http"


def wait_for_download(fleet: Fleet, host: str, process, timeout: float) -> bool:
    """Whether `host` started an apt download before `process` (its provision) ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if fleet.ssh(host, APT_DOWNLOADING, timeout=30).returncode == 0:
            return True
        time.sleep(0.2)
    return False


class LoggedInUser:
    """A user logged in over SSH (a session in loginctl) running a job that holds the GPU: a
    stand-in /dev/nvidia0 (the fleet has no GPU; the guard looks at what processes hold open)."""

    def __init__(self, fleet: Fleet, host: str, user: str = "alice"):
        self.fleet, self.host, self.user = fleet, host, user
        self.session: subprocess.Popen[bytes] | None = None
        self.job_pid = ""

    def __enter__(self) -> LoggedInUser:
        user = self.user
        setup = self.fleet.ssh(
            self.host,
            f"id {user} >/dev/null 2>&1 || sudo useradd --create-home {user}; "
            f"sudo install -d -o {user} -m 700 /home/{user}/.ssh && "
            f"sudo install -o {user} -m 600 .ssh/authorized_keys /home/{user}/.ssh/ && "
            "sudo touch /dev/nvidia0 && sudo chmod 666 /dev/nvidia0",
        )
        if setup.returncode != 0:
            raise AssertionError(setup.explain())
        args = self.fleet.ssh_args(self.host, user=user)
        self.session = subprocess.Popen(
            [*args, "exec 3</dev/nvidia0; exec sleep 900"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self.fleet.ssh(
                self.host,
                f"loginctl list-sessions --no-legend | grep -qw {user} && pgrep -u {user} -x sleep",
            )
            if found.returncode == 0:
                self.job_pid = found.output.split()[0]
                return self
            time.sleep(1)
        raise AssertionError(f"{user}'s session on {self.host} did not show in loginctl")

    def __exit__(self, *_exc: object) -> None:
        if self.session is not None:
            self.session.kill()
            self.session.wait()
        # The job outlives a dropped SSH connection: end it by its id, and the stand-in device.
        pid = shlex.quote(self.job_pid) if self.job_pid else "''"
        self.fleet.ssh(self.host, f"sudo kill {pid} 2>/dev/null; sudo rm -f /dev/nvidia0")


def provision_in_background(
    inventory: Path, host: str, log: Path, *assignments: str
) -> subprocess.Popen[bytes]:
    return start_interruptible(
        [
            "make",
            "--no-print-directory",
            "provision",
            f"INVENTORY={inventory}",
            f"HOST={host}",
            *assignments,
        ],
        log,
    )


def finished(process: subprocess.Popen[bytes], log: Path, timeout: float) -> Completed:
    began = time.monotonic()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
    return Completed(
        [str(arg) for arg in process.args],  # type: ignore[union-attr]
        process.returncode if process.returncode is not None else -9,
        log.read_text(),
        time.monotonic() - began,
    )
