"""End-to-end stages against a local fleet of real Debian 12 hosts (run by tests/fleet/e2e.sh).

Stages run in file order, each on the state the previous one left:
smoke (harness proof) → bad operator input → unsupported host → interrupted run → full provision
in parallel → idempotence → verify (GPU truth, CPU-only workloads) → unreachable host.
Stages that need a playbook not yet in the repository skip, naming it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleet_support import (
    REPO,
    Completed,
    Fleet,
    kill_group,
    make,
    playbook_exists,
    run,
    start_interruptible,
)
from live_lab import (
    APT_DOWNLOADING,
    HeavyProvision,
    LoggedInUser,
    finished,
    provision_in_background,
    wait_for_download,
)

SMOKE_PLAYBOOK = REPO / "tests" / "fleet" / "smoke.yml"
PROFILES = REPO / "tests" / "fleet" / "profiles.yml"
VENV_PYTHON = "/opt/labrig/venv/bin/python"
REPORTS = REPO / "reports"
# The seed's NDArray example (imperative and symbolic with its gradient) and the two extra probes.
SMOKE_CHECKS = {
    "workload.smoke.elementwise",
    "workload.smoke.gradient",
    "workload.smoke.matmul",
    "workload.smoke.roundtrip",
}
# What mxnet-cu112 1.9.1 has on top of the CPU wheel (roles/mxnet/tasks/expectations.yml).
GPU_WHEEL_FEATURES = ("CUDA", "CUDNN", "NCCL", "CUDA_RTC")
# Generous: the heavy host builds the NVIDIA module with DKMS on a 2-core machine.
PROVISION_TIMEOUT_S = 45 * 60

needs_provision = pytest.mark.skipif(
    not playbook_exists("provision.yml"), reason="playbooks/provision.yml does not exist yet"
)
needs_verify = pytest.mark.skipif(
    not (playbook_exists("provision.yml") and playbook_exists("verify.yml")),
    reason="playbooks/provision.yml or playbooks/verify.yml does not exist yet",
)


def _playbook(
    inventory: Path,
    playbook: Path,
    *args: str,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> Completed:
    return run(
        [
            str(REPO / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            str(inventory),
            str(playbook),
            *args,
        ],
        timeout=timeout,
        env=env,
    )


def _light_hosts(fleet: Fleet) -> list[str]:
    """The hosts without the GPU stack (profiles.yml), in inventory order: the tests that act on a
    host while the heavy hosts provision in the background use these."""
    profiles = yaml.safe_load(PROFILES.read_text())
    return [host for host in fleet.hosts if not profiles.get(host, {}).get("labrig_use_cuda")]


def _heavy_hosts(fleet: Fleet) -> list[str]:
    """The hosts that take the whole GPU stack (profiles.yml), in inventory order."""
    light = _light_hosts(fleet)
    return [host for host in fleet.hosts if host not in light]


def _assert_all_hosts_ok(result: Completed, hosts: list[str]) -> dict[str, dict[str, int]]:
    assert result.returncode == 0, result.explain()
    recap = result.recap
    assert sorted(recap) == sorted(hosts), f"PLAY RECAP names {sorted(recap)}\n{result.explain()}"
    for host, counts in recap.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (
            f"{host}: {counts}\n{result.explain()}"
        )
    return recap


def _lines_naming(result: Completed, word: str) -> list[str]:
    return [line for line in result.output.splitlines() if word in line]


def _assert_nothing_changed(fleet: Fleet, hosts: list[str], result: Completed) -> None:
    for host in hosts:
        changed = fleet.changed_paths(host)
        assert not changed, f"{host} changed {changed} although the run should stop first\n" + (
            result.explain()
        )


# --- smoke: the harness itself -----------------------------------------------------------------


def test_smoke_first_run_installs_rebuilds_initramfs_and_reboots_one_host(fleet: Fleet) -> None:
    # Start from a host without the smoke file, so the handlers run even on a reused fleet.
    for host in fleet.hosts:
        removed = fleet.ssh(host, "sudo rm -f /etc/modprobe.d/labrig-smoke.conf")
        assert removed.returncode == 0, removed.explain()

    result = _playbook(fleet.inventory, SMOKE_PLAYBOOK)

    recap = _assert_all_hosts_ok(result, list(fleet.hosts))
    assert all(counts["changed"] >= 2 for counts in recap.values()), result.explain()
    handler_output = result.output.split("RUNNING HANDLER [Reboot one host]", 1)[-1]
    first_host = next(iter(fleet.hosts))
    assert f"changed: [{first_host}]" in handler_output.split("TASK [", 1)[0], result.explain()


def test_smoke_second_run_changes_nothing(fleet: Fleet) -> None:
    result = _playbook(fleet.inventory, SMOKE_PLAYBOOK)

    recap = _assert_all_hosts_ok(result, list(fleet.hosts))
    assert {host: counts["changed"] for host, counts in recap.items()} == dict.fromkeys(
        fleet.hosts, 0
    ), result.explain()


# --- bad operator input: each fails before any host changes, naming what to fix ------------------


def test_unknown_host_fails_before_any_change(fleet: Fleet, profiled_inventory: Path) -> None:
    fleet.mark_unchanged()

    result = make("provision", profiled_inventory, HOST="nosuchhost")

    assert result.returncode != 0, result.explain()
    assert len(_lines_naming(result, "nosuchhost")) == 1, result.explain()
    _assert_nothing_changed(fleet, list(fleet.hosts), result)


@needs_provision
def test_wrong_typed_variable_fails_before_any_change(
    fleet: Fleet, make_inventory: Callable[..., Path]
) -> None:
    inventory = make_inventory("wrong-type", all={"labrig_use_cuda": "perhaps"})
    fleet.mark_unchanged()

    result = make("provision", inventory, timeout=600)

    assert result.returncode != 0, result.explain()
    assert _lines_naming(result, "labrig_use_cuda"), result.explain()
    _assert_nothing_changed(fleet, list(fleet.hosts), result)


@needs_provision
def test_incompatible_cuda_cudnn_pair_fails_before_any_change(
    fleet: Fleet, make_inventory: Callable[..., Path]
) -> None:
    heavy = next(iter(fleet.hosts))
    # cuDNN 8 (the cu11 wheel) with CUDA 12: MXNet 1.9.1 cannot use that pair.
    inventory = make_inventory("cuda12", **{heavy: {"cuda_version": "12.2"}})
    fleet.mark_unchanged([heavy])

    result = make("provision", inventory, HOST=heavy, timeout=600)

    assert result.returncode != 0, result.explain()
    assert _lines_naming(result, "cuda_version"), result.explain()
    _assert_nothing_changed(fleet, [heavy], result)


@needs_provision
def test_unsupported_host_stops_in_preflight_and_a_rollout_with_it(
    fleet: Fleet, make_inventory: Callable[..., Path]
) -> None:
    # A rollout one host at a time whose first batch fails whole: the others are never touched, and
    # the summary still comes, though every host that ran failed.
    first, last = next(iter(fleet.hosts)), list(fleet.hosts)[-1]
    fake_platform = {
        "distribution": "CentOS",
        "distribution_version": "7.9",
        "distribution_major_version": "7",
    }
    inventory = make_inventory(
        "unsupported", **{first: {"preflight_facts_override": fake_platform}}
    )
    fleet.mark_unchanged([first, last])

    result = make("provision", inventory, HOST=f"{first},{last}", BATCH="1", timeout=600)

    assert result.returncode != 0, result.explain()
    assert result.recap.get(first, {}).get("failed") == 1, result.explain()
    assert last not in result.recap, result.explain()
    assert [line for line in _lines_naming(result, "CentOS") if "preflight" in line], (
        result.explain()
    )
    summary = " ".join(result.output.split("LABRIG SUMMARY", 1)[-1].split())
    assert f"{first}: " in summary, result.explain()
    assert "CentOS 7 is not supported" in summary, result.explain()
    assert f"{last}: not run: the rollout stopped before its batch" in summary, result.explain()
    _assert_nothing_changed(fleet, [first, last], result)


# --- provisioning for real --------------------------------------------------------------------


@needs_provision
def test_interrupted_provision_converges_when_rerun(
    fleet: Fleet, profiled_inventory: Path, tmp_path: Path
) -> None:
    host = list(fleet.hosts)[1] if len(fleet.hosts) > 1 else next(iter(fleet.hosts))
    log = tmp_path / "interrupted.log"
    command = ["make", "--no-print-directory", "provision", f"INVENTORY={profiled_inventory}"]
    process = start_interruptible([*command, f"HOST={host}"], log)
    try:
        # Interrupt while dpkg is really unpacking or configuring packages on the host.
        deadline = time.monotonic() + 20 * 60
        while process.poll() is None and time.monotonic() < deadline:
            if fleet.ssh(host, "pgrep -x dpkg", timeout=30).returncode == 0:
                break
            time.sleep(2)
        assert process.poll() is None, (
            "the run ended before package installation could be interrupted:\n"
            + log.read_text()[-4000:]
        )
    finally:
        kill_group(process)

    rerun = make("provision", profiled_inventory, HOST=host, timeout=PROVISION_TIMEOUT_S)

    _assert_all_hosts_ok(rerun, [host])


# --- a live lab: the heavy host provisions, losing power in its DKMS build, while the light hosts
# prove the guards, the lock, a mirror outage, a newer driver and a filesystem too small ---------

# The heavy host's provision runs in a thread across the tests below, which use the light hosts.
_HEAVY: dict[str, HeavyProvision] = {}


@needs_provision
def test_heavy_host_starts_its_full_provision_in_the_background(
    fleet: Fleet, profiled_inventory: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    heavy = _heavy_hosts(fleet)[0]
    thread = HeavyProvision(
        fleet, profiled_inventory, heavy, tmp_path_factory.mktemp("heavy"), PROVISION_TIMEOUT_S
    )
    thread.start()
    _HEAVY["thread"] = thread
    # Its first run is under way on the host before the light hosts start.
    deadline = time.monotonic() + 300
    while fleet.ssh(heavy, "test -e /run/labrig/provision.lock").returncode != 0:
        assert thread.is_alive() and time.monotonic() < deadline, _heavy_state(thread)
        time.sleep(2)


def _heavy_state(thread: HeavyProvision) -> str:
    return f"error {thread.error!r}; runs:\n" + "\n".join(run.explain() for run in thread.runs)


@needs_provision
def test_mirror_outage_during_a_light_hosts_first_install_is_survived(
    fleet: Fleet, profiled_inventory: Path, tmp_path: Path
) -> None:
    host = _light_hosts(fleet)[-1]
    # A slow link, so that a download is in flight long enough to cut the mirror under it.
    slow = fleet.harness("throttle", host, "2mbit")
    assert slow.returncode == 0, slow.explain()
    log = tmp_path / "outage.log"
    process = provision_in_background(profiled_inventory, host, log)
    stop = in_flight = None
    try:
        if wait_for_download(fleet, host, process, 600):
            stop = fleet.harness("proxy-stop")
            in_flight = fleet.ssh(host, APT_DOWNLOADING)
            # The mirror stays away for 30 s, longer than apt's own first retries.
            time.sleep(30)
    finally:
        start = fleet.harness("proxy-start")
        fleet.harness("throttle", host, "off")
        first = finished(process, log, PROVISION_TIMEOUT_S)
    assert start.returncode == 0, start.explain()
    assert stop is not None, "the run never downloaded a package:\n" + first.explain()
    assert stop.returncode == 0, stop.explain()
    retried = f"FAILED - RETRYING: [{host}]" in first.output
    # A download seen just before the stop may end in the second between: then the outage must show
    # in the run itself (a task retried), or the test proved nothing.
    assert in_flight.returncode == 0 or retried or "mirror unreachable" in first.output, (
        "apt was not downloading when the mirror went away and no task retried:\n" + first.explain()
    )

    if first.returncode == 0:
        _assert_all_hosts_ok(first, [host])
        # Retried through the outage: by apt itself (a download that waited it out) or the task.
        waited = [float(t) for t in re.findall(r" -+ (\d+\.\d+)s$", first.output, re.M)]
        assert retried or max(waited, default=0) >= 30, first.explain()
    else:
        # Given up on, the host says why; the next run converges.
        assert f"{host} failed in" in first.output and "mirror unreachable" in first.output, (
            first.explain()
        )
        _assert_all_hosts_ok(make("provision", profiled_inventory, HOST=host, timeout=1800), [host])


@needs_provision
def test_the_debian13_hosts_start_their_full_provision_in_the_background(
    fleet: Fleet, profiled_inventory: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The other heavy hosts (Debian 13) provision side by side with the rest, without a power cut,
    # started only now: the outage above restarts the apt cache that every host downloads through,
    # and a download cut by it is the light host's test, not theirs.
    others = _heavy_hosts(fleet)[1:]
    if not others:
        pytest.skip("no Debian 13 heavy host in this fleet (LABRIG_FLEET_RELEASES)")
    for other in others:
        _HEAVY[other] = HeavyProvision(
            fleet,
            profiled_inventory,
            other,
            tmp_path_factory.mktemp(other),
            PROVISION_TIMEOUT_S,
            cut_power=False,
        )
        _HEAVY[other].start()
    for other in others:
        deadline = time.monotonic() + 300
        while fleet.ssh(other, "test -e /run/labrig/provision.lock").returncode != 0:
            assert _HEAVY[other].is_alive() and time.monotonic() < deadline, _heavy_state(
                _HEAVY[other]
            )
            time.sleep(2)


# apt's http method swapped for one that never answers: apt then waits for it for good, as its
# download loop was seen to after a mirror outage (pkgAcquire::Run pulsing, no socket, no worker).
HUNG_APT_METHOD = (
    "sudo mv /usr/lib/apt/methods/http /usr/lib/apt/methods/http.labrig-test"
    " && printf '#!/bin/sh\\nexec sleep 3600\\n' | sudo tee /usr/lib/apt/methods/http >/dev/null"
    " && sudo chmod 0755 /usr/lib/apt/methods/http"
)
RESTORED_APT_METHOD = (
    "if [ -e /usr/lib/apt/methods/http.labrig-test ]; then"
    " sudo mv -f /usr/lib/apt/methods/http.labrig-test /usr/lib/apt/methods/http; fi"
)
# What is left of apt some seconds after the run (the host's watcher may kill a moment after the
# controller gave up).
APT_LEFT_AFTER_THE_KILL = (
    "for i in $(seq 30); do pgrep -f '^/usr/lib/apt/methods/|^sleep 3600' >/dev/null || exit 0;"
    " sleep 0.5; done; pgrep -a -f '^/usr/lib/apt/methods/|^sleep 3600'"
)
REFRESH_LISTS = """\
- name: Refresh the package lists the way provision does
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: The package lists, with apt_sources' own tasks
      ansible.builtin.include_role:
        name: apt_sources
        tasks_from: lists.yml
"""


@needs_provision
def test_a_package_lists_download_that_hangs_is_killed_and_retried(
    fleet: Fleet, profiled_inventory: Path, tmp_path: Path
) -> None:
    host = _light_hosts(fleet)[-1]
    playbook = tmp_path / "lists.yml"
    playbook.write_text(REFRESH_LISTS)
    # Lists always older than valid: the refresh runs, as on a host idle for a day.
    refresh = ("--limit", host, "-e", "apt_sources_cache_valid_time=0")
    test_plugins = {"ANSIBLE_TEST_PLUGINS": str(REPO / "roles" / "labrig" / "test_plugins")}
    swapped = fleet.ssh(host, HUNG_APT_METHOD)
    try:
        assert swapped.returncode == 0, swapped.explain()
        hung = _playbook(
            profiled_inventory,
            playbook,
            *refresh,
            "-e",
            "apt_sources_update_timeout=5",
            "-e",
            "labrig_network_retries=1",
            "-e",
            "labrig_network_delay=0",
            timeout=300,
            env=test_plugins,
        )
        left = fleet.ssh(host, APT_LEFT_AFTER_THE_KILL)
    finally:
        restored = fleet.ssh(host, RESTORED_APT_METHOD)
    assert restored.returncode == 0, restored.explain()

    # Killed after 5 s, tried once more, then given up on as the network's fault.
    assert hung.returncode != 0, hung.explain()
    assert f"FAILED - RETRYING: [{host}]" in hung.output, hung.explain()
    assert "apt-get update: timeout exceeded after 5 s" in hung.output, hung.explain()
    assert hung.seconds < 120, hung.explain()
    # Nothing of the killed apt is left to hold the lists' lock: the next refresh just works.
    assert left.output.strip() == "", left.explain()
    again = _playbook(profiled_inventory, playbook, *refresh, timeout=600, env=test_plugins)
    _assert_all_hosts_ok(again, [host])


# A workstation as labs have it: unattended-upgrades installed and running (its service keeps
# `unattended-upgrade-shutdown --wait-for-signal`, named `unattended-upgr`, up for good; its own
# timers are left off so that no upgrade starts in the middle of the stages), and a display server
# on the GPU: a stand-in at Xorg's path, run by root, holding the stand-in /dev/nvidia0.
UNATTENDED_UPGRADES = (
    "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q unattended-upgrades >/dev/null"
    ' && printf \'APT::Periodic::Update-Package-Lists "0";\\nAPT::Periodic::Unattended-Upgrade'
    ' "0";\\n\' | sudo tee /etc/apt/apt.conf.d/20auto-upgrades >/dev/null'
    " && sudo systemctl restart unattended-upgrades"
    " && for i in $(seq 20); do pgrep -x unattended-upgr && exit 0; sleep 0.5; done; exit 1"
)
DISPLAY_SERVER = (
    "{ sudo install -D -m 0755 /usr/bin/sleep /usr/lib/xorg/Xorg"
    " && sudo setsid sh -c 'exec 3</dev/nvidia0; exec /usr/lib/xorg/Xorg 900'; }"
    " </dev/null >/dev/null 2>&1 &"
    " for i in $(seq 20); do pgrep -x -u root Xorg && exit 0; sleep 0.5; done; exit 1"
)
NO_DISPLAY_SERVER = "sudo pkill -x -u root Xorg; sudo rm -rf /usr/lib/xorg"


@needs_provision
def test_a_host_in_use_is_not_touched_while_the_others_go_on(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    busy, other = list(fleet.hosts)[1], _light_hosts(fleet)[-1]
    upgrades = fleet.ssh(busy, UNATTENDED_UPGRADES, timeout=600)
    assert upgrades.returncode == 0 and upgrades.output.strip(), upgrades.explain()
    with LoggedInUser(fleet, busy, "alice") as alice:
        desktop = fleet.ssh(busy, DISPLAY_SERVER)
        try:
            assert desktop.returncode == 0, desktop.explain()
            xorg_pid = desktop.output.split()[0]
            fleet.mark_unchanged([busy])

            # FULL=1: a converged host is left alone in use or not; the guard stands before real
            # work.
            result = make(
                "provision", profiled_inventory, HOST=f"{busy},{other}", FULL="1", timeout=1800
            )

            assert result.returncode != 0, result.explain()
            assert result.recap[busy]["failed"] == 1, result.explain()
            assert result.recap[other]["failed"] == 0 and result.recap[other]["unreachable"] == 0
            # alice's job is GPU work; the display server is the desktop, named apart.
            expected = (
                f"{busy}: 1 GPU process ({alice.job_pid} alice sleep 900) and user alice logged in"
                f" (the desktop holds the GPU too, not counted as a job ({xorg_pid} root"
                " /usr/lib/xorg/Xorg)); rerun with labrig_maintenance_ok=true"
            )
            summary = result.output.split("LABRIG SUMMARY", 1)[-1]
            assert expected in " ".join(summary.split()), result.explain()
            _assert_nothing_changed(fleet, [busy], result)

            # Every task, apt_sources' wait for running apt work included, beside the
            # unattended-upgrades service: it must not be taken for apt at work.
            allowed = make(
                "provision",
                profiled_inventory,
                HOST=busy,
                ARGS="-e labrig_maintenance_ok=true",
                FULL="1",
                timeout=1800,
            )
        finally:
            fleet.ssh(busy, NO_DISPLAY_SERVER)

        _assert_all_hosts_ok(allowed, [busy])
        said = " ".join(allowed.output.split())
        assert "going on: labrig_maintenance_ok is true" in said, allowed.explain()
        assert f"FAILED - RETRYING: [{busy}]: Wait for an apt or dpkg" not in allowed.output, (
            allowed.explain()
        )
        still_up = fleet.ssh(busy, "pgrep -a -x unattended-upgr")
        assert "unattended-upgrade-shutdown" in still_up.output, still_up.explain()


# NVIDIA's repository as its own instructions set it up (the cuda-keyring package): a source file
# with its own keyring. The fleet reaches no vendor: a real signed flat repository of one stand-in
# package, under a file: URI on the host, stands in for it, and the role is pointed at that URI.
STAND_IN_REPOSITORY = "/srv/labrig-e2e/nvidia"
CUDA_KEYRING_SOURCE = "/etc/apt/sources.list.d/cuda-debian12-x86_64.list"
CUDA_KEYRING = "/usr/share/keyrings/cuda-archive-keyring.gpg"
ADD_NVIDIA_REPOSITORY = """\
- name: Add NVIDIA's repository the way the driver, cuda and cudnn roles do
  hosts: all
  become: true
  tasks:
    - name: NVIDIA's repository, with apt_sources' own tasks
      ansible.builtin.include_role:
        name: apt_sources
        tasks_from: nvidia_repo.yml
"""


def _signed_flat_repository(folder: Path) -> tuple[str, dict[str, bytes]]:
    """A flat apt repository of one package, signed with a key made for it: (the key's
    fingerprint, {file name: content}) with the binary keyring as `keyring.gpg`."""
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--passphrase", ""]
    made = run(
        [*gpg, "--quick-gen-key", "labrig e2e <e2e@labrig.invalid>", "ed25519", "sign", "never"]
    )
    assert made.returncode == 0, made.explain()
    listed = run([*gpg, "--with-colons", "--list-keys"])
    fingerprint = next(
        line.split(":")[9] for line in listed.output.splitlines() if line.startswith("fpr:")
    )
    packages = (
        "Package: labrig-e2e-cuda-stand-in\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: labrig e2e <e2e@labrig.invalid>\n"
        "Filename: ./labrig-e2e-cuda-stand-in_1.0_all.deb\nSize: 1\nSHA256: " + "0" * 64 + "\n"
        "Description: the one package of a stand-in for NVIDIA's repository\n"
    ).encode()
    release = (
        "Origin: labrig e2e\nLabel: labrig e2e\n"
        + time.strftime("Date: %a, %d %b %Y %H:%M:%S UTC\n", time.gmtime())
        + f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    )
    (folder / "Release").write_text(release)
    signed = run(
        [*gpg, "--clearsign", "--output", str(folder / "InRelease"), str(folder / "Release")]
    )
    assert signed.returncode == 0, signed.explain()
    keyring = subprocess.run([*gpg, "--export"], capture_output=True, check=True).stdout
    # gpg left an agent running for this home: nothing of the test outlives it.
    run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"])
    return fingerprint, {
        "Packages": packages,
        "InRelease": (folder / "InRelease").read_bytes(),
        "keyring.gpg": keyring,
    }


def _put(fleet: Fleet, host: str, path: str, content: bytes) -> None:
    encoded = base64.b64encode(content).decode()
    put = fleet.ssh(
        host,
        f"sudo install -d {shlex.quote(str(Path(path).parent))} && echo {encoded}"
        f" | base64 -d | sudo tee {shlex.quote(path)} >/dev/null",
    )
    assert put.returncode == 0, put.explain()


@needs_provision
def test_nvidias_repository_set_up_by_hand_is_used_not_added_twice(
    fleet: Fleet, profiled_inventory: Path, tmp_path: Path
) -> None:
    host = _light_hosts(fleet)[-1]
    fingerprint, files = _signed_flat_repository(tmp_path)
    uri = f"file:{STAND_IN_REPOSITORY}/debian12/x86_64/"
    for name in ("Packages", "InRelease"):
        _put(fleet, host, f"{STAND_IN_REPOSITORY}/debian12/x86_64/{name}", files[name])
    _put(fleet, host, CUDA_KEYRING, files["keyring.gpg"])
    _put(fleet, host, CUDA_KEYRING_SOURCE, f"deb [signed-by={CUDA_KEYRING}] {uri} /\n".encode())
    playbook = tmp_path / "nvidia-repo.yml"
    playbook.write_text(ADD_NVIDIA_REPOSITORY)
    arguments = (
        "--limit",
        host,
        "-e",
        f"apt_sources_nvidia_repo_url=file:{STAND_IN_REPOSITORY}",
        "-e",
        f"apt_sources_nvidia_key_fingerprint={fingerprint}",
    )
    test_plugins = {"ANSIBLE_TEST_PLUGINS": str(REPO / "roles" / "labrig" / "test_plugins")}
    try:
        first = _playbook(profiled_inventory, playbook, *arguments, timeout=600, env=test_plugins)
        second = _playbook(profiled_inventory, playbook, *arguments, timeout=600, env=test_plugins)
        apt = fleet.ssh(
            host,
            "sudo apt-get update -q 2>&1 && ls /etc/apt/sources.list.d"
            " && apt-cache policy labrig-e2e-cuda-stand-in",
            timeout=300,
        )
    finally:
        fleet.ssh(
            host,
            f"sudo rm -rf {STAND_IN_REPOSITORY} {CUDA_KEYRING} {CUDA_KEYRING_SOURCE}"
            " /etc/apt/sources.list.d/labrig-nvidia-cuda.sources"
            " && sudo apt-get update -q >/dev/null",
            timeout=300,
        )

    _assert_all_hosts_ok(first, [host])
    said = " ".join(first.output.split())
    adopted = f"({CUDA_KEYRING_SOURCE}, signed-by {CUDA_KEYRING})"
    assert f"nvidia-cuda is already a source of this host {adopted}" in said, first.explain()
    assert _assert_all_hosts_ok(second, [host])[host]["changed"] == 0, second.explain()
    # One source of the URI, so apt has no two Signed-By values to refuse; the package is there.
    assert apt.returncode == 0 and "Conflicting values" not in apt.output, apt.explain()
    assert "labrig-nvidia-cuda.sources" not in apt.output, apt.explain()
    assert "Candidate: 1.0" in apt.output, apt.explain()


@needs_provision
def test_a_second_run_against_a_host_refuses_naming_the_first(
    fleet: Fleet, profiled_inventory: Path, tmp_path: Path
) -> None:
    host = list(fleet.hosts)[1]
    log = tmp_path / "first.log"
    # The first run works (FULL=1, the host is converged); the second's probe sees its lock.
    first_run = provision_in_background(profiled_inventory, host, log, "FULL=1")
    try:
        deadline = time.monotonic() + 300
        while (held := fleet.ssh(host, "cat /run/labrig/provision.lock")).returncode != 0:
            assert first_run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        holder = json.loads(held.output)

        second = make("provision", profiled_inventory, HOST=host, timeout=1800)
    finally:
        first = finished(first_run, log, 1800)

    assert second.returncode != 0, second.explain()
    assert (
        f"another labrig run is provisioning this host: started {holder['started']} from "
        f"{holder['controller']} (ansible-playbook pid {holder['pid']})"
    ) in " ".join(second.output.split()), second.explain()
    _assert_all_hosts_ok(first, [host])
    assert fleet.ssh(host, "test -e /run/labrig/provision.lock").returncode != 0, "lock left behind"


@needs_provision
def test_a_newer_driver_is_refused_and_shown_as_drift(
    fleet: Fleet, make_inventory: Callable[..., Path]
) -> None:
    host = _light_hosts(fleet)[-1]
    # A package named like the driver at a higher version, as a hand install would leave it.
    control = (
        "Package: nvidia-driver\nVersion: 999.0-1\nMaintainer: labrig e2e <e2e@labrig.invalid>\n"
        "Description: stand-in for a driver installed by hand\n"
    )
    built = fleet.ssh(
        host,
        "set -e; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
        f' equivs >/dev/null; cd "$(mktemp -d)"; printf %s {shlex.quote(control)} > driver.ctl;'
        " equivs-build driver.ctl >/dev/null; sudo dpkg -i nvidia-driver_999.0-1_all.deb",
        timeout=900,
    )
    assert built.returncode == 0, built.explain()
    # The light host as a GPU host, the driver role first: it must stop before installing anything.
    inventory = make_inventory(
        "newer-driver",
        **{host: {"labrig_use_cuda": True, "cudnn_enabled": False, "nouveau_enabled": False}},
    )
    try:
        fleet.mark_unchanged([host])
        refused = make("provision", inventory, HOST=host, timeout=1800)
        check = make("check", inventory, HOST=host, ARGS="--tags nvidia_driver", timeout=1800)
        changed = fleet.changed_paths(host)
    finally:
        removed = fleet.ssh(host, "sudo dpkg --purge nvidia-driver")
    assert removed.returncode == 0, removed.explain()

    assert refused.returncode != 0 and refused.recap[host]["failed"] == 1, refused.explain()
    text = " ".join(refused.output.split())
    assert "nvidia-driver 999.0-1 is installed, newer than the pinned 535." in text, (
        refused.explain()
    )
    assert "nvidia_driver_allow_downgrade: true" in text, refused.explain()
    assert not changed, f"{host} changed {changed}\n{refused.explain()}\n{check.explain()}"
    assert check.returncode == 0 and check.recap[host]["changed"] >= 1, check.explain()
    assert "provision would stop here" in " ".join(check.output.split()), check.explain()


@needs_provision
def test_a_filesystem_too_small_stops_in_preflight_with_the_numbers(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    host = list(fleet.hosts)[1]
    mounted = fleet.ssh(host, "sudo mount -t tmpfs -o size=64m labrig-e2e-small /opt")
    assert mounted.returncode == 0, mounted.explain()
    try:
        fleet.mark_unchanged([host])
        result = make("provision", profiled_inventory, HOST=host, timeout=600)
    finally:
        unmounted = fleet.ssh(host, "sudo umount labrig-e2e-small")
    assert unmounted.returncode == 0, unmounted.explain()

    assert result.returncode != 0 and result.recap[host]["failed"] == 1, result.explain()
    text = " ".join(result.output.split())
    assert "MiB free on /opt" in text and "MiB for" in text, result.explain()
    _assert_nothing_changed(fleet, [host], result)


@needs_provision
def test_heavy_host_converges_after_the_power_cut_in_its_dkms_build(fleet: Fleet) -> None:
    thread = _HEAVY.pop("thread")
    thread.join(PROVISION_TIMEOUT_S)
    assert not thread.is_alive(), "the heavy host's provision did not finish"
    assert thread.error is None, _heavy_state(thread)
    heavy = thread.host
    assert thread.power_cut, "the power was never cut during a DKMS build:\n" + _heavy_state(thread)
    assert len(thread.runs) >= 2, _heavy_state(thread)
    cut_run, final = thread.runs[0], thread.runs[-1]
    assert cut_run.returncode != 0, cut_run.explain()
    _assert_all_hosts_ok(final, [heavy])
    # dpkg was finished first (its postinst rebuilt the module), then the install went on.
    repaired = final.output.split("Finish the cut-off dpkg run", 1)[-1].split("TASK [", 1)[0]
    assert f"changed: [{heavy}]" in repaired, final.explain()
    # The module is built for the installed kernel (nothing loads it: there is no GPU).
    stack = fleet.ssh(heavy, "sudo dkms status && /usr/bin/nvcc --version && sudo dpkg --audit")
    assert stack.returncode == 0, stack.explain()
    assert ": installed" in stack.output and "release 11.8" in stack.output, stack.explain()
    print(f"heavy host: {thread.seconds:.0f} s, {len(thread.runs)} runs; cut: {thread.power_cut}")


@needs_provision
def test_debian13_host_runs_the_gpu_wheel_on_its_pinned_python_and_cuda11_wheels(
    fleet: Fleet,
) -> None:
    others = [host for host in _HEAVY if host != "thread"]
    if not others:
        pytest.skip("no Debian 13 heavy host in this fleet (LABRIG_FLEET_RELEASES)")
    for host in others:
        thread = _HEAVY.pop(host)
        thread.join(PROVISION_TIMEOUT_S)
        assert not thread.is_alive(), f"{host}'s provision did not finish"
        assert thread.error is None, _heavy_state(thread)
        _assert_all_hosts_ok(thread.runs[-1], [host])
        assert len(thread.runs) == 1, _heavy_state(thread)
        # Debian 13's own driver, built by DKMS for its own kernel; no CUDA 11 toolkit, its runtime
        # from NVIDIA's wheels through the dynamic linker; the venv on the pinned CPython 3.11.
        stack = fleet.ssh(
            host,
            "grep VERSION_ID /etc/os-release && sudo dkms status && ! command -v nvcc"
            " && /sbin/ldconfig -p"
            " | grep -E 'libcudart.so.11.0|libcublas.so.11|libnccl.so.2|libcudnn.so.8'"
            f" && {VENV_PYTHON} -c 'import sys; print(sys.version)'"
            f" && {VENV_PYTHON} -c 'import numpy; print(\"numpy\", numpy.__version__)'",
        )
        assert stack.returncode == 0, stack.explain()
        assert '"13"' in stack.output and ": installed" in stack.output, stack.explain()
        assert "nvidia-current/550." in stack.output, stack.explain()
        assert "3.11.2" in stack.output and "numpy 1.23.5" in stack.output, stack.explain()
        for library in ("libcudart.so.11.0", "libcublas.so.11", "libnccl.so.2", "libcudnn.so.8"):
            assert library in stack.output, stack.explain()
        print(f"{host}: {thread.seconds:.0f} s")


@needs_provision
def test_second_provision_changes_nothing_on_any_host(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    # Every task, as on a first run: idempotence of the roles themselves.
    result = make("provision", profiled_inventory, timeout=PROVISION_TIMEOUT_S, FULL="1")

    recap = _assert_all_hosts_ok(result, list(fleet.hosts))
    assert {host: counts["changed"] for host, counts in recap.items()} == dict.fromkeys(
        fleet.hosts, 0
    ), result.explain()

    # The daily run on the converged fleet: one probe per host, nothing else.
    fast = make("provision", profiled_inventory, timeout=600)

    recap = _assert_all_hosts_ok(fast, list(fleet.hosts))
    summary = fast.output.split("LABRIG SUMMARY", 1)[-1]
    for host in fleet.hosts:
        assert recap[host]["changed"] == 0 and recap[host]["ok"] <= 3, fast.explain()
        assert f"{host}: converged as its run of" in summary, fast.explain()


@needs_provision
def test_check_mode_shows_drift_without_repairing_it(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    heavy = next(iter(fleet.hosts))
    held = fleet.ssh(heavy, "apt-mark showhold")
    assert held.returncode == 0 and held.output.split(), held.explain()
    package = sorted(held.output.split())[0]
    # The drift a lab admin fears: a held driver/toolkit package released by hand.
    unhold = fleet.ssh(heavy, f"sudo apt-mark unhold {package}")
    assert unhold.returncode == 0, unhold.explain()

    check = make("check", profiled_inventory, HOST=heavy, timeout=1800)

    assert check.returncode == 0, check.explain()
    assert check.recap[heavy]["changed"] >= 1, check.explain()
    assert package in check.output, check.explain()
    still = fleet.ssh(heavy, "apt-mark showhold")
    assert package not in still.output.split(), "check mode changed the host"

    # A plain run after the converged one: the released hold is drift its probe sees.
    repaired = make("provision", profiled_inventory, HOST=heavy, timeout=PROVISION_TIMEOUT_S)

    _assert_all_hosts_ok(repaired, [heavy])
    why = [line for line in repaired.output.splitlines() if line.startswith(f"{heavy}: full run:")]
    assert why and "/var/lib/dpkg/status" in why[0], repaired.explain()
    assert package in fleet.ssh(heavy, "apt-mark showhold").output.split()


# --- verify tells the truth on GPU-less hosts ---------------------------------------------------


def _latest_reports(fleet: Fleet, result: Completed, previous: Path | None) -> dict[str, Any]:
    latest = (REPORTS / "latest").resolve()
    assert latest != previous, f"make verify wrote no new run under {REPORTS}\n{result.explain()}"
    reports = {}
    for host in fleet.hosts:
        path = latest / f"{host}.json"
        assert path.is_file(), f"no report for {host} in {latest}\n{result.explain()}"
        reports[host] = json.loads(path.read_text())
    return reports


def _previous_run() -> Path | None:
    latest = REPORTS / "latest"
    return latest.resolve() if latest.exists() else None


def _check(report: dict[str, Any], matches: Callable[[str], bool]) -> dict[str, Any]:
    found = [check for check in report["checks"] if matches(check["check_id"])]
    known = [check["check_id"] for check in report["checks"]]
    why = report.get("suite_error") or ("unreachable" if report.get("unreachable") else "")
    assert found, f"{report.get('host')}: no such check among {known} {why}"
    return found[0]


@needs_verify
def test_verify_reports_gpu_checks_failed_with_the_real_reason(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    previous = _previous_run()

    result = make("verify", profiled_inventory, timeout=1800)

    assert result.returncode != 0, result.explain()
    profiles = {host: path.read_text() for host, path in _host_vars(profiled_inventory).items()}
    for host, report in _latest_reports(fleet, result, previous).items():
        smi = _check(report, lambda check_id: check_id == "driver.nvidia_smi")
        nvml = _check(report, lambda check_id: check_id == "driver.nvml")
        assert smi["status"] == "failed" and nvml["status"] == "failed", (host, smi, nvml)
        assert report["summary"]["ok"] is False and report["exit_code"] != 0, (host, report)
        if "e2e_expect_driver: true" in profiles[host]:
            # The driver is installed but no device and no module: what nvidia-smi and NVML say.
            assert "exit 9" in smi["reason"] or "couldn't communicate" in smi["reason"], smi
            assert "driver not loaded" in nvml["reason"].lower(), nvml
        if "e2e_expect_gpu_wheel: true" in profiles[host]:
            _assert_gpu_wheel_build(host, report)
        else:
            assert smi["reason"] and nvml["reason"], (smi, nvml)


@needs_verify
def test_verify_cpu_only_passes_ndarray_and_mlp_on_every_host(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    previous = _previous_run()
    # Another local user makes the old fixed work directory first: verify must not use it.
    stray = list(fleet.hosts)[1]
    planted = fleet.ssh(
        stray,
        "cd /var/tmp && sudo -u nobody sh -c 'mkdir -m 777 labrig-verify && touch labrig-verify/x'",
    )
    assert planted.returncode == 0, planted.explain()

    result = make("verify", profiled_inventory, timeout=1800, CPU_ONLY="1")

    assert result.returncode == 0, result.explain()
    left = fleet.ssh(
        stray,
        "sudo rm -rf /var/tmp/labrig-verify; ls -d /var/tmp/labrig-verify-*",
    )
    assert left.returncode != 0, f"a private report directory was left behind: {left.output}"
    profiles = {host: path.read_text() for host, path in _host_vars(profiled_inventory).items()}
    for host, report in _latest_reports(fleet, result, previous).items():
        assert report["mode"] == "cpu-only", (host, report["mode"])
        smoke = [c for c in report["checks"] if c["check_id"].startswith("workload.smoke.")]
        assert {c["check_id"] for c in smoke} >= SMOKE_CHECKS, (host, smoke)
        assert all(c["status"] == "passed" for c in smoke), (host, smoke)
        mlp = _check(report, lambda check_id: check_id == "workload.mlp")
        assert mlp["status"] == "passed", (host, mlp)
        assert mlp["measurements"]["accuracy"] >= 0.97, (host, mlp)
        if "e2e_expect_gpu_wheel: true" in profiles[host]:
            # The NDArray and MLP checks above ran on mxnet-cu112's CPU kernels.
            _assert_gpu_wheel_build(host, report)


def _assert_gpu_wheel_build(host: str, report: dict[str, Any]) -> None:
    imported = _check(report, lambda check_id: check_id == "build.import")
    assert imported["status"] == "passed", (host, imported)
    features = _check(report, lambda check_id: check_id == "build.features")
    assert features["status"] == "passed", (host, features)
    cuda_features = {name: features["measurements"].get(name) for name in GPU_WHEEL_FEATURES}
    assert cuda_features == dict.fromkeys(GPU_WHEEL_FEATURES, True), (host, features)


# --- a rooted workstation stays one workstation ---------------------------------------------------

# The hostile host's Python: the real module's result, plus facts naming the controller's own
# variables and paths, and a traversal for any wheel name it reports.
HOSTILE_PYTHON = """\
#!/usr/bin/python3
import json, subprocess, sys
FORGED = %(forged)s
done = subprocess.run(["/usr/bin/python3", *sys.argv[1:]], stdin=sys.stdin, capture_output=True)
sys.stderr.buffer.write(done.stderr)
out = done.stdout.decode("utf-8", "replace")
try:
    result = json.loads(out[out.index("{"):])
except ValueError:
    result = None
if not isinstance(result, dict):
    sys.stdout.write(out)
    sys.exit(done.returncode)
result.setdefault("ansible_facts", {}).update(FORGED)
if str(result.get("name", "")).endswith(".whl"):
    result["name"] = "../../../../../root/.bashrc"
sys.stdout.write(json.dumps(result))
sys.exit(done.returncode)
"""
# The hostile host's suite: `python -m verify` writes a forged report (another host's name, NaN,
# deep nesting, terminal escapes); anything else is the venv's real interpreter.
HOSTILE_SUITE = """\
#!/bin/sh
if [ "$1" = -m ] && [ "$2" = verify ]; then
  while [ $# -gt 0 ]; do [ "$1" = --json ] && out=$2; shift; done
  cat /opt/labrig-e2e/forged-report.json > "$out"
  exit 0
fi
exec "$(dirname "$0")/python-real" "$@"
"""


def _forged_report(claims: str) -> bytes:
    deep: list[Any] = []
    for _ in range(60):
        deep = [deep]
    report = {
        "schema": "labrig.verify/1",
        "host": claims,
        "duration_s": float("nan"),
        "mode": "cpu-only",
        "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 3090"}],
        "checks": [
            {
                "check_id": "gpu.ecc",
                "status": "passed",
                "gpu": 0,
                "reason": "\x1b]2;owned\x07\x1b[2J fine",
                "measurements": {},
            }
        ],
        "exit_code": 0,
        "deep": deep,
    }
    # json writes NaN as NaN: what a forged suite would send, and what strict JSON refuses.
    return json.dumps(report).encode()


def _controller_state() -> dict[str, str]:
    """sha256 of what a rooted host must never reach on the controller: the admin's dotfiles and
    SSH keys, the repository's tracked files, the artifact cache and the stored reports."""
    home = Path.home()
    paths = [p for p in home.iterdir() if p.name.startswith(".") and p.is_file()]
    paths += (
        [p for p in (home / ".ssh").rglob("*") if p.is_file()] if (home / ".ssh").is_dir() else []
    )
    tracked = run(["git", "-C", str(REPO), "ls-files", "-z"]).output.split("\0")
    paths += [REPO / name for name in tracked if name and (REPO / name).is_file()]
    for folder in (REPO / "artifacts", REPORTS):
        if folder.is_dir():
            paths += [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    # The suite bundle `make verify` packs from this checkout itself, and `latest`, which moves.
    own = (REPORTS / ".suite", REPORTS / "latest")
    paths = [p for p in paths if not any(p.is_relative_to(folder) for folder in own)]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _rows(fleet_doc: dict[str, Any], host: str) -> tuple[str, list[tuple[str, str, str]]]:
    """A host's state and each check's status (reasons carry timings that differ run to run)."""
    entry = next(h for h in fleet_doc["hosts"] if h["host"] == host)
    checks = sorted((c["check_id"], str(c.get("gpu")), c["status"]) for c in entry["checks"])
    return entry["state"], checks


@needs_verify
def test_a_rooted_workstation_reaches_neither_the_controller_nor_the_other_hosts(
    fleet: Fleet, make_inventory: Callable[..., Path]
) -> None:
    # The Debian 12 hosts: the heavy one and the light ones.
    hosts = [next(iter(fleet.hosts)), *_light_hosts(fleet)]
    honest, hostile = hosts[:-1], hosts[-1]
    previous = _previous_run()
    assert previous is not None, "needs the CPU-only verify run before it"
    before_fleet = json.loads((previous / "fleet.json").read_text())
    forged = {
        "labrig_wheelhouse": str(Path.home() / ".ssh"),
        "verify_wheelhouse_globs": ["id_*", "*"],
        "verify_reports_dir": str(Path.home()),
        "verify_project_dir": "/tmp",
        "mxnet_artifact_cache": str(Path.home() / ".ssh"),
    }
    _put(
        fleet,
        hostile,
        "/usr/local/bin/labrig-hostile-python",
        (HOSTILE_PYTHON % {"forged": repr(forged)}).encode(),
    )
    _put(fleet, hostile, "/opt/labrig-e2e/forged-report.json", _forged_report(honest[0]))
    armed = fleet.ssh(
        hostile,
        "sudo chmod 0755 /usr/local/bin/labrig-hostile-python"
        " && cd /opt/labrig/venv/bin && sudo mv python python-real"
        f" && echo {base64.b64encode(HOSTILE_SUITE.encode()).decode()} | base64 -d"
        " | sudo tee python >/dev/null && sudo chmod 0755 python",
    )
    inventory = make_inventory(
        "hostile",
        **{hostile: {"ansible_python_interpreter": "/usr/local/bin/labrig-hostile-python"}},
    )
    packages_before = {
        h: fleet.ssh(h, "/opt/labrig/venv/bin/python -m pip freeze").output for h in honest
    }
    state_before = _controller_state()
    try:
        assert armed.returncode == 0, armed.explain()
        provision = make("provision", inventory, HOST=",".join(hosts[1:]), FULL="1", timeout=1800)
        verify = make("verify", inventory, timeout=1800, CPU_ONLY="1")
    finally:
        fleet.ssh(
            hostile,
            "cd /opt/labrig/venv/bin"
            " && if [ -e python-real ]; then sudo mv -f python-real python; fi;"
            " sudo rm -rf /usr/local/bin/labrig-hostile-python /opt/labrig-e2e",
        )
    state_after = _controller_state()

    # The forged facts and names changed nothing: provision went through on both hosts.
    _assert_all_hosts_ok(provision, hosts[1:])
    latest = (REPORTS / "latest").resolve()
    assert latest != previous, verify.explain()
    run_dir = str(latest)
    changed = sorted(
        path
        for path in set(state_before) | set(state_after)
        if state_before.get(path) != state_after.get(path) and not path.startswith(run_dir + "/")
    )
    assert changed == [], changed
    # Nothing of the hostile host's reached the honest hosts.
    packages_after = {
        h: fleet.ssh(h, "/opt/labrig/venv/bin/python -m pip freeze").output for h in honest
    }
    assert packages_after == packages_before
    # The report names the hostile host as the suspect; the honest hosts' rows are their own.
    assert verify.returncode != 0, verify.explain()
    said = " ".join(verify.output.split())
    assert f"suspect host {hostile}: report refused" in said, verify.explain()
    assert f"its report claims to be {honest[0]}" in said, verify.explain()
    assert "\x1b" not in verify.output and "\x07" not in verify.output
    after_fleet = json.loads((latest / "fleet.json").read_text())
    assert [h["host"] for h in after_fleet["hosts"]].count(honest[0]) == 1
    for host in honest:
        assert _rows(after_fleet, host) == _rows(before_fleet, host), host
        trend = after_fleet["trends"][host]
        assert trend["runs"][-1] == latest.name and trend["states"][-1] == trend["states"][-2]
    assert after_fleet["comparison"]["models"] == before_fleet["comparison"]["models"]
    assert _rows(after_fleet, hostile)[0] == "suite_error"


@needs_verify
def test_verify_torch_backend_passes_where_pytorch_was_provisioned(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    torch_hosts = [
        host
        for host, path in _host_vars(profiled_inventory).items()
        if "labrig_framework: both" in path.read_text()
    ]
    assert torch_hosts, "no host in tests/fleet/profiles.yml installs PyTorch"
    previous = _previous_run()

    result = make(
        "verify",
        profiled_inventory,
        timeout=1800,
        CPU_ONLY="1",
        FRAMEWORK="torch",
        HOST=",".join(torch_hosts),
    )

    assert result.returncode == 0, result.explain()
    latest = (REPORTS / "latest").resolve()
    assert latest != previous, result.explain()
    for host in torch_hosts:
        report = json.loads((latest / f"{host}.json").read_text())
        assert report["framework"]["name"] == "torch", (host, report["framework"])
        workloads = [c for c in report["checks"] if c["check_id"].startswith("workload.")]
        assert workloads and all(c["framework"]["name"] == "torch" for c in workloads), host
        mlp = _check(report, lambda check_id: check_id == "workload.mlp")
        assert mlp["status"] == "passed", (host, mlp)


def _host_vars(inventory: Path) -> dict[str, Path]:
    return {path.stem: path for path in (inventory.parent / "host_vars").glob("*.yml")}


# --- faults -----------------------------------------------------------------------------------


@needs_provision
def test_unreachable_host_is_reported_while_the_others_complete(
    fleet: Fleet, profiled_inventory: Path
) -> None:
    stopped = _light_hosts(fleet)[-1]
    stop = fleet.harness("stop", stopped)
    assert stop.returncode == 0, stop.explain()
    try:
        result = make("provision", profiled_inventory, timeout=PROVISION_TIMEOUT_S)
        previous = _previous_run()
        verified = make("verify", profiled_inventory, timeout=1800, CPU_ONLY="1")
    finally:
        start = fleet.harness("start", stopped)
    assert start.returncode == 0, start.explain()

    # The fleet report still has an entry for the host it could not reach, saying so.
    assert verified.returncode != 0, verified.explain()
    reports = _latest_reports(fleet, verified, previous)
    assert reports[stopped].get("unreachable") is True, reports[stopped]
    for host, report in reports.items():
        if host != stopped:
            assert report["exit_code"] == 0, (host, report["summary"])
    fleet_json = json.loads(((REPORTS / "latest") / "fleet.json").read_text())
    states = {host["host"]: host["state"] for host in fleet_json["hosts"]}
    assert states[stopped] == "unreachable", states

    assert result.returncode != 0, result.explain()
    recap = result.recap
    assert recap.get(stopped, {}).get("unreachable", 0) >= 1, result.explain()
    for host in fleet.hosts:
        if host != stopped:
            assert recap[host]["failed"] == 0 and recap[host]["unreachable"] == 0, (
                f"{host}: {recap[host]}\n{result.explain()}"
            )
