"""`make burn-in` over SSH on a provisioned fleet host (after test_e2e.py provisioned and verified
the fleet; test_mxnet_orchestration.py, which runs in between, works on the first host's
stand-in virtualenv and leaves node3's /opt/labrig/venv alone): one minute of CPU load through
the deployed suite, its report fetched and shown in the fleet report beside node3's verify."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fleet_support import REPO, make

HOST = "node3"


def test_burn_in_over_ssh_shows_in_the_fleet_report(fleet, profiled_inventory: Path) -> None:
    assert HOST in fleet.hosts, fleet.hosts
    # The burn-in is shown beside the host's newest verify report, and test_e2e.py's last verify
    # run had node3 stopped: verify it as it is now first, as a lab admin would.
    verified = make("verify", profiled_inventory, HOST=HOST, CPU_ONLY="1", timeout=600)
    assert verified.returncode == 0, verified.output[-4000:]
    began = time.monotonic()
    result = make("burn-in", profiled_inventory, HOST=HOST, MINUTES="1", CPU_ONLY="1", timeout=240)
    took = time.monotonic() - began
    assert result.returncode == 0, result.output[-4000:]
    latest = (REPO / "reports" / "latest").resolve()
    assert (latest / f"{HOST}.burn-in.json").is_file(), sorted(p.name for p in latest.iterdir())
    assert (latest / f"{HOST}.burn-in.html").read_text().count("<svg") >= 4

    report = json.loads((latest / f"{HOST}.burn-in.json").read_text())
    assert report["schema"] == "labrig.burn-in/1" and report["host"] == HOST
    assert 55 <= report["burn_in"]["duration_s"] <= 120, report["burn_in"]["duration_s"]
    assert report["burn_in"]["devices"][0]["gemm"]["iterations"] > 1

    fleet_json = json.loads((latest / "fleet.json").read_text())
    (entry,) = [h for h in fleet_json["hosts"] if h["host"] == HOST]
    assert entry["burn_in"]["ok"] is True, entry["burn_in"]
    ids = {c["check_id"] for c in entry["checks"]}
    # Beside verify's: node3's verify report from the earlier run was carried into this one.
    assert {"burnin.run", "burnin.gemm", "burnin.memory"} <= ids, sorted(ids)
    assert any(i.startswith("workload.") for i in ids), sorted(ids)
    fleet_html = (latest / "fleet.html").read_text()
    assert "burnin.gemm" in fleet_html
    # The host's per-device plots travel in the page's embedded data (its "<" escaped).
    assert fleet_html.count("\\u003csvg") >= 4, "no burn-in plots in fleet.html"
    assert f"burn-in {HOST}: ok" in result.output
    print(f"make burn-in MINUTES=1 CPU_ONLY=1 took {took:.0f} s")
