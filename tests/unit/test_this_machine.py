"""Without an inventory, `make verify` checks this machine and `make provision` touches nothing
unless told, in so many words, to provision the controller itself."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from verify import this_machine

ROOT = Path(__file__).resolve().parents[2]

needs_no_inventory = pytest.mark.skipif(
    (ROOT / "inventory").exists(), reason="this checkout has ./inventory: make uses it"
)


def make(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_why_no_gpu_names_the_missing_piece(tmp_path: Path) -> None:
    loaded = tmp_path / "version"
    loaded.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.216.01\n")
    missing = tmp_path / "absent"

    assert this_machine.why_no_gpu(loaded, smi_found=False) is None
    assert this_machine.why_no_gpu(missing, smi_found=False) == (
        "no NVIDIA driver here (nvidia-smi not found)"
    )
    assert "kernel module is not loaded" in (this_machine.why_no_gpu(missing, smi_found=True) or "")


def test_suite_runs_in_the_provisioned_venv_when_there_is_one(tmp_path: Path) -> None:
    provisioned = tmp_path / "python"
    assert this_machine.suite_python(provisioned) != str(provisioned)
    provisioned.write_text("")
    assert this_machine.suite_python(provisioned) == str(provisioned)


@pytest.mark.slow
def test_this_machine_gets_the_reports_a_fleet_run_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if this_machine.why_no_gpu() is None:
        pytest.skip("an NVIDIA driver is loaded here: the run would exercise the GPU")

    status = this_machine.main(["--reports-dir", str(tmp_path)])

    out = capsys.readouterr().out
    assert status == 0, out
    first = out.splitlines()[0]
    assert "GPU checks skipped" in first and "INVENTORY=" in first, first
    run_dir = (tmp_path / "latest").resolve()
    host_reports = [p for p in run_dir.glob("*.json") if p.name != "fleet.json"]
    assert len(host_reports) == 1
    report = json.loads(host_reports[0].read_text())
    assert report["mode"] == "cpu-only" and report["exit_code"] == 0
    assert {"fleet.html", "fleet.json", "fleet.junit.xml"} <= {p.name for p in run_dir.iterdir()}


@needs_no_inventory
def test_make_verify_without_inventory_checks_this_machine() -> None:
    result = make("verify", "DRY_RUN=1")
    assert "-m verify.this_machine" in result.stdout, result.stdout + result.stderr
    assert "ansible-playbook" not in result.stdout


@needs_no_inventory
def test_make_provision_without_inventory_says_how_and_touches_nothing() -> None:
    result = make("provision")

    assert result.returncode == 2
    assert "labrig never provisions this machine by default" in result.stderr
    assert "cp inventory.example inventory" in result.stderr
    assert "HOST=localhost ARGS='-e labrig_provision_localhost=true'" in result.stderr
    assert "PLAY" not in result.stdout


@needs_no_inventory
def test_provisioning_the_controller_needs_the_explicit_flag() -> None:
    # The guard is the first task: the run stops before preflight reads anything else.
    result = make("check", "HOST=localhost", timeout=300)

    assert result.returncode != 0
    assert "localhost is this controller" in result.stdout, result.stdout[-3000:]
    assert "labrig_provision_localhost=true" in result.stdout


def test_demo_without_root_stops_with_one_line() -> None:
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    nobody = as_nobody if os.geteuid() == 0 else []
    result = subprocess.run(
        [*nobody, "bash", str(ROOT / "tests" / "fleet" / "demo.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "demo: cannot run: needs root (network namespaces, overlay mounts, systemd-nspawn): "
        "sudo make demo"
    ]
