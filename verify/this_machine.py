"""`make verify` with no inventory: run the suite on this machine and write the same reports a
fleet run writes (reports/<run-id>/<host>.json, .junit.xml, fleet.json/.html, reports/latest).

Where no NVIDIA driver is loaded, the GPU checks cannot pass, so the run is CPU-only and says why
in one line. The framework is the one labrig provisioned here (/opt/labrig/venv) when there is one,
else the controller's own virtualenv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROVISIONED_VENV_PYTHON = Path("/opt/labrig/venv/bin/python")
DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")
FLEET_HINT = "make verify INVENTORY=<file> verifies a fleet over SSH"


def why_no_gpu(
    driver_file: Path = DRIVER_VERSION_FILE, smi_found: bool | None = None
) -> str | None:
    """Why this machine cannot run the GPU checks, or None when an NVIDIA driver is loaded."""
    if driver_file.exists():
        return None
    if not (shutil.which("nvidia-smi") is not None if smi_found is None else smi_found):
        return "no NVIDIA driver here (nvidia-smi not found)"
    return f"the NVIDIA kernel module is not loaded ({driver_file} is missing)"


def suite_python(provisioned: Path = PROVISIONED_VENV_PYTHON) -> str:
    return str(provisioned) if provisioned.exists() else sys.executable


def suite_command(
    python: str, run_dir: Path, host: str, cpu_only: bool, framework: str | None
) -> list[str]:
    command = [python, "-m", "verify", "--host", host]
    command += [
        "--json",
        str(run_dir / f"{host}.json"),
        "--junit",
        str(run_dir / f"{host}.junit.xml"),
    ]
    if cpu_only:
        command.append("--cpu-only")
    if framework:
        command += ["--framework", framework]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify.this_machine", description=__doc__)
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU checks")
    parser.add_argument("--framework", choices=("mxnet", "torch"), help="framework to exercise")
    parser.add_argument("--reports-dir", type=Path, default=REPO / "reports")
    parser.add_argument("--width", type=int, default=80, help="width of the summary")
    args = parser.parse_args(argv)

    cpu_only = args.cpu_only
    no_gpu = why_no_gpu()
    if no_gpu and not cpu_only:
        print(f"verify: {no_gpu}: GPU checks skipped, workloads on the CPU; {FLEET_HINT}.")
        cpu_only = True
    host = socket.gethostname().split(".")[0] or "localhost"
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.reports_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    python = suite_python()
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    suite = subprocess.run(
        suite_command(python, run_dir, host, cpu_only, args.framework), env=env, check=False
    )
    if not (run_dir / f"{host}.json").exists():
        print(f"verify: the suite wrote no report (exit {suite.returncode})", file=sys.stderr)
        return 2
    merge = [sys.executable, "-m", "verify.fleet", "merge", str(run_dir)]
    merge += ["--reports-dir", str(args.reports_dir), "--width", str(args.width)]
    subprocess.run(merge, env=env, check=False)
    return suite.returncode


if __name__ == "__main__":
    sys.exit(main())
