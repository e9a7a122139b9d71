"""Fleet health over time on the e2e's hosts, after test_e2e.py provisioned them: the monitoring
role added in one run (`--tags monitoring` with labrig_monitoring: true; a second run changes
nothing), the nightly verify's service started once on each host, node_exporter serving its
metrics on each host's address, and a real Prometheus (Debian's `prometheus` binary, started here
on the bridge address with short intervals) that scrapes the fleet through `make monitor`'s
config: node1's GPU checks fail with the real reason, node2 and node3 pass their CPU checks, a
GPU job makes the service skip its run, and a stopped host's node_exporter-down alert fires.
Everything this test starts it stops by PID."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleet_support import REPO, Fleet, make, parse_play_recap, run

PROMETHEUS = Path("/usr/bin/prometheus")
SCRAPE_S = 2
DOWN_AFTER_S = 6
CPU_CHECK_PREFIXES = ("build.", "workload.")


def _host_vars(inventory: Path) -> dict[str, dict[str, Any]]:
    return {
        path.stem: yaml.safe_load(path.read_text())
        for path in (inventory.parent / "host_vars").glob("*.yml")
    }


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


class Prometheus:
    """A Prometheus server of our own, asked through its HTTP API."""

    def __init__(self, config: Path, data: Path, address: str, log: Path) -> None:
        self.url = f"http://{address}:{_free_port(address)}"
        self.log = log
        self.process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=promql)["result"]

    def wait_for(self, what: str, probe, timeout_s: float) -> Any:
        """Poll `probe()` until it returns something truthy; fail naming `what`."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                last = probe()
            except OSError as exc:  # not listening yet
                last = exc
            else:
                if last:
                    return last
            time.sleep(1)
        pytest.fail(f"Prometheus: {what} not seen within {timeout_s:.0f} s (last: {last!r})")


# The harness's nspawn guests (systemd 252 on a hybrid cgroup tree) sometimes cannot clean a
# unit's cgroup after a run ("Failed to kill control group ... Input/output error"), and the next
# start of the unit fails while attaching to it ("Failed to attach to cgroup", 219/CGROUP) before
# any of its commands run. A start that left no trace is therefore tried again, up to 3 times.
def _start_until(fleet: Fleet, host: str, done: str):
    start = "sudo systemctl start labrig-verify.service"
    return fleet.ssh(
        host,
        f"for i in 1 2 3; do {start} || true; {done} && exit 0; sleep 1; done; exit 1",
        timeout=900,
    )


def _run_nightly_verify(fleet: Fleet, host: str):
    marker = "/run/labrig-e2e-monitoring-start"
    fresh = f"test /var/lib/labrig/node-exporter/labrig_verify.prom -nt {marker}"
    touched = fleet.ssh(host, f"sudo touch {marker} && sleep 1")
    assert touched.returncode == 0, touched.explain()
    return _start_until(fleet, host, fresh)


def _monitored_inventory(fleet: Fleet, make_inventory, profiled_inventory: Path) -> Path:
    """The e2e profiles with monitoring on every host, quick CPU mode where there is no CUDA."""
    profiles = _host_vars(profiled_inventory)
    cpu_hosts = {
        host: {"monitoring_verify_cpu_only": True}
        for host in fleet.hosts
        if not profiles[host].get("labrig_use_cuda")
    }
    return make_inventory("monitoring", all={"labrig_monitoring": True}, **cpu_hosts)


def test_prometheus_scrapes_the_fleet_and_fires_the_down_alert(
    fleet: Fleet, make_inventory, profiled_inventory: Path, tmp_path: Path
) -> None:
    if not PROMETHEUS.exists() or not shutil.which("promtool"):
        pytest.fail(
            "Debian's prometheus package is missing: run tests/fleet/install-host-packages.sh"
        )
    began = time.monotonic()
    inventory = _monitored_inventory(fleet, make_inventory, profiled_inventory)
    profiles = _host_vars(inventory)
    monitored = sorted(fleet.hosts)

    # The role on the provisioned fleet, alone; then again, changing nothing.
    first = make("provision", inventory, ARGS="--tags monitoring", timeout=1800)
    recap = parse_play_recap(first.output)
    assert first.returncode == 0 and set(recap) == set(monitored), first.explain()
    assert all(counts["failed"] == 0 for counts in recap.values()), first.explain()
    again = make("provision", inventory, ARGS="--tags monitoring", timeout=1800)
    assert again.returncode == 0, again.explain()
    changed = {host: counts["changed"] for host, counts in parse_play_recap(again.output).items()}
    assert changed == dict.fromkeys(monitored, 0), again.explain()
    provisioned_s = time.monotonic() - began
    # Root writes the converged record in /var/lib/labrig: never the service user's folder.
    for host in monitored:
        owners = fleet.ssh(host, "stat -c '%U %a' /var/lib/labrig /var/lib/labrig/node-exporter")
        assert owners.output.split("\n")[0].strip() == "root 755", owners.explain()

    # The timer's service, once on each host, as the timer would start it.
    with ThreadPoolExecutor(len(monitored)) as pool:
        runs = list(pool.map(lambda h: _run_nightly_verify(fleet, h), monitored))
    for result in runs:
        assert result.returncode == 0, result.explain()
    ran_s = time.monotonic() - began - provisioned_s

    # make monitor, the way an operator writes the config; then the same with short intervals.
    written = make("monitor", inventory, OUT=str(tmp_path / "monitor"), timeout=120)
    assert written.returncode == 0, written.explain()
    assert "promtool check config" in written.output and ": ok" in written.output, written.output
    targets = json.loads((tmp_path / "monitor" / "targets" / "labrig-node.json").read_text())
    expected = {h: f"{fleet.hosts[h]}:9100" for h in monitored}
    assert {t["labels"]["host"]: t["targets"][0] for t in targets} == expected, targets
    fast = tmp_path / "fast"
    generated = run(
        [
            sys.executable,
            str(REPO / "scripts" / "monitor_config.py"),
            f"--inventory={inventory}",
            f"--out={fast}",
            f"--scrape-interval={SCRAPE_S}s",
            f"--evaluation-interval={SCRAPE_S}s",
            f"--down-after={DOWN_AFTER_S}s",
        ],
        timeout=120,
    )
    assert generated.returncode == 0, generated.explain()

    bridge = urllib.parse.urlparse(fleet.vars["labrig_apt_proxy"]).hostname
    prometheus = Prometheus(fast / "prometheus.yml", tmp_path / "data", bridge, tmp_path / "log")
    stopped = monitored[-1]
    try:
        prometheus.wait_for(
            "every host up",
            lambda: len(prometheus.query('up{job="labrig-node"} == 1')) == len(monitored),
            timeout_s=60,
        )
        _assert_the_fleet_metrics(prometheus, profiles, monitored)
        _assert_a_busy_gpu_skips_the_run(fleet, prometheus, monitored[0])

        stop = fleet.harness("stop", stopped)
        assert stop.returncode == 0, stop.explain()
        down_began = time.monotonic()
        try:
            alert = prometheus.wait_for(
                f"LabrigNodeExporterDown firing for {stopped}",
                lambda: [
                    a
                    for a in prometheus.get("/api/v1/alerts")["alerts"]
                    if a["labels"]["alertname"] == "LabrigNodeExporterDown"
                    and a["labels"]["host"] == stopped
                    and a["state"] == "firing"
                ],
                timeout_s=90,
            )
            fired_s = time.monotonic() - down_began
            others = {s["metric"]["host"] for s in prometheus.query('up{job="labrig-node"} == 1')}
        finally:
            start = fleet.harness("start", stopped)
        assert start.returncode == 0, start.explain()
        assert fleet.hosts[stopped] in alert[0]["annotations"]["summary"], alert
        assert others == set(monitored) - {stopped}, others
        # Booted again, node_exporter is back (enabled at boot) and the alert resolves.
        prometheus.wait_for(
            f"{stopped} up again",
            lambda: prometheus.query(f'up{{job="labrig-node",host="{stopped}"}} == 1'),
            timeout_s=90,
        )
    finally:
        prometheus.stop()
    assert prometheus.process.returncode is not None
    print(
        f"monitoring: role twice {provisioned_s:.0f} s, nightly verify on {len(monitored)} hosts "
        f"{ran_s:.0f} s, down alert fired {fired_s:.0f} s after the stop; "
        f"test {time.monotonic() - began:.0f} s"
    )


# The host has no GPU: a file under /dev named like one stands in for the device a job holds open.
# The service's condition sees an open descriptor whose target is /dev/nvidia*, as with a real job.
BUSY_DEVICE = "/dev/nvidia-labrig-e2e"
BUSY_TEXTFILE = "/var/lib/labrig/node-exporter/labrig_verify_busy.prom"


def _assert_a_busy_gpu_skips_the_run(fleet: Fleet, prometheus: Prometheus, host: str) -> None:
    before = fleet.ssh(host, "stat -c %Y /var/lib/labrig/node-exporter/labrig_verify.prom")
    assert before.returncode == 0, before.explain()
    job = fleet.ssh(
        host,
        f"sudo touch {BUSY_DEVICE} && (setsid sleep 300 <{BUSY_DEVICE} >/dev/null 2>&1 & echo $!)",
    )
    assert job.returncode == 0, job.explain()
    pid = job.output.split()[-1]
    try:
        # The job holds the device once its shell has opened it: wait for that first.
        holds = f"sudo find /proc/{pid}/fd -lname '{BUSY_DEVICE}' | grep -q ."
        waited = fleet.ssh(
            host, f"for i in $(seq 100); do {holds} && exit 0; sleep 0.1; done; exit 1"
        )
        assert waited.returncode == 0, waited.explain()
        skipped = _start_until(fleet, host, f"test -e {BUSY_TEXTFILE}")
        assert skipped.returncode == 0, skipped.explain()
        skipped = fleet.ssh(
            host,
            f"cat {BUSY_TEXTFILE} && stat -c %Y /var/lib/labrig/node-exporter/labrig_verify.prom",
        )
    finally:
        stopped = fleet.ssh(host, f"kill {pid}; sudo rm -f {BUSY_DEVICE}")
    assert stopped.returncode == 0, stopped.explain()
    assert skipped.returncode == 0, skipped.explain()
    assert 'labrig_verify_skipped_timestamp_seconds{reason="busy"}' in skipped.output, (
        skipped.output
    )
    assert "labrig_verify_busy_processes 1" in skipped.output.splitlines(), skipped.output
    # The last results stay as they were; the skip is its own series.
    assert skipped.output.split()[-1] == before.output.split()[-1], skipped.output
    prometheus.wait_for(
        f"{host}'s busy skip",
        lambda: prometheus.query(
            f'labrig_verify_skipped_timestamp_seconds{{host="{host}",reason="busy"}}'
        ),
        timeout_s=30,
    )


def _assert_the_fleet_metrics(
    prometheus: Prometheus, profiles: dict[str, dict[str, Any]], monitored: list[str]
) -> None:
    now = time.time()
    for host in monitored:
        (stamp,) = prometheus.query(f'labrig_verify_last_run_timestamp_seconds{{host="{host}"}}')
        assert now - float(stamp["value"][1]) < 900, (host, stamp)

    for host in monitored:
        statuses = {
            s["metric"]["check"]: s["value"][1]
            for s in prometheus.query(f'labrig_check_status{{host="{host}"}}')
        }
        (code,) = prometheus.query(f'labrig_verify_exit_code{{host="{host}"}}')
        if profiles[host].get("monitoring_verify_cpu_only"):
            # CPU hosts: the framework's checks pass, the GPU ones are skipped, the run is fit.
            cpu = {c: v for c, v in statuses.items() if c.startswith(CPU_CHECK_PREFIXES)}
            assert cpu and set(cpu.values()) <= {"0", "3"}, (host, cpu)
            assert cpu["build.import"] == "0" and cpu["workload.smoke.elementwise"] == "0", cpu
            assert "workload.mlp" not in statuses, "quick mode skips the MLP"
            assert code["value"][1] == "0", (host, statuses)
            continue
        # A host with the GPU stack but no GPU: its GPU checks fail, for the real reason.
        assert statuses["driver.nvml"] == "1" and statuses["driver.nvidia_smi"] == "1", statuses
        assert code["value"][1] == "1", host
        reasons = {
            s["metric"]["check"]: s["metric"]["reason"]
            for s in prometheus.query(f'labrig_check_reason_info{{host="{host}"}}')
        }
        if profiles[host].get("e2e_expect_driver"):
            assert "driver not loaded" in reasons["driver.nvml"].lower(), reasons
            smi = reasons["driver.nvidia_smi"]
            assert "exit 9" in smi or "couldn't communicate" in smi, reasons
        else:
            assert reasons["driver.nvml"], reasons
        # ...and the alert says it, with the reason as its description.
        alerts = prometheus.wait_for(
            f"LabrigRequiredCheckFailing for {host} driver.nvml",
            lambda host=host: [
                a
                for a in prometheus.get("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "LabrigRequiredCheckFailing"
                and a["labels"]["host"] == host
                and a["labels"]["check"] == "driver.nvml"
                and a["state"] == "firing"
            ],
            timeout_s=30,
        )
        assert alerts[0]["annotations"]["description"] == reasons["driver.nvml"], alerts
