"""The fleet report fixtures, and the generators the other test_fleet_* files build on.

tests/fixtures/reports/ holds two runs of a 3-host fleet, written in the per-host format of
verify/CONTRACTS.md section 2 (ws02 in the newer run is the stand-in the verify playbook
writes for an unreachable host). Big fleets are generated here from those, never committed.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from verify.result import REPORT_SCHEMA, CheckResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
NEW_RUN = "20261127T102233Z"
OLD_RUN = "20261120T090000Z"


def copy_run(run_id: str, reports_dir: Path) -> Path:
    """A writable copy of a fixture run (merging writes next to the host reports)."""
    target = reports_dir / run_id
    shutil.copytree(FIXTURES / run_id, target)
    return target


def load_fixture(run_id: str, host: str) -> dict[str, Any]:
    return json.loads((FIXTURES / run_id / f"{host}.json").read_text(encoding="utf-8"))


def write_reports(run_dir: Path, reports: list[dict[str, Any]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    for report in reports:
        (run_dir / f"{report['host']}.json").write_text(json.dumps(report), encoding="utf-8")
    return run_dir


def gpu_host_report(host: str, gpu_count: int, *, scale: dict[int, float] | None = None) -> dict:
    """A healthy multi-GPU host made from ws01's GPU 0, each GPU's perf figures times scale[i]."""
    template = load_fixture(OLD_RUN, "ws01")
    scale = scale or {}
    host_checks = [c for c in template["checks"] if c["gpu"] is None]
    gpu0_checks = [c for c in template["checks"] if c["gpu"] == 0]
    checks = list(copy.deepcopy(host_checks))
    gpus = []
    for index in range(gpu_count):
        gpu = copy.deepcopy(template["gpus"][0])
        gpu.update(index=index, uuid=f"GPU-{host}-{index}")
        gpus.append(gpu)
        factor = scale.get(index, 1.0)
        for check in copy.deepcopy(gpu0_checks):
            check["gpu"] = index
            if check["check_id"].startswith("workload.perf."):
                check["measurements"] = {k: v * factor for k, v in check["measurements"].items()}
            checks.append(check)
    report = copy.deepcopy(template)
    report.update(host=host, gpus=gpus, checks=checks, exit_code=0)
    return report


def fail_check(report: dict, check_id: str, gpu: int | None, reason: str) -> dict:
    for check in report["checks"]:
        if check["check_id"] == check_id and check["gpu"] == gpu:
            check["status"] = "failed"
            check["reason"] = reason
            report["exit_code"] = 1
            return report
    raise KeyError((check_id, gpu))


def big_fleet(run_dir: Path, hosts: int = 200, gpus: int = 8) -> dict[str, Any]:
    """A lab of `hosts` x `gpus`: every 25th host unreachable, every 10th with a failing GPU,
    host 7's GPU 3 at half speed. Returns what a reader should find in it."""
    reports = []
    expected = {"unreachable": [], "failed": [], "slow": ("node007", 3)}
    for n in range(1, hosts + 1):
        name = f"node{n:03d}"
        if n % 25 == 0:
            stand_in = load_fixture(NEW_RUN, "ws02")
            stand_in["host"] = name
            reports.append(stand_in)
            expected["unreachable"].append(name)
            continue
        report = gpu_host_report(name, gpus, scale={3: 0.5} if n == 7 else None)
        if n % 10 == 0:
            fail_check(report, "gpu.pcie_link", n % gpus, "PCIe gen4 x8 of gen4 x16")
            expected["failed"].append(name)
        reports.append(report)
    write_reports(run_dir, reports)
    return expected


@pytest.mark.parametrize("run_id", [NEW_RUN, OLD_RUN])
def test_fixture_reports_follow_the_per_host_contract(run_id: str) -> None:
    for path in sorted((FIXTURES / run_id).glob("*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        assert report["schema"] == REPORT_SCHEMA
        assert report["host"] == path.stem
        checks = [CheckResult.from_dict(c) for c in report["checks"]]
        counts = {s: sum(c.status.value == s for c in checks) for s in report["summary"]}
        for status in ("passed", "failed", "skipped", "error"):
            assert counts[status] == report["summary"][status], (path.name, status)
        if report.get("unreachable"):
            assert (checks, report["exit_code"], report["summary"]["ok"]) == ([], 2, False)
            continue
        assert report["summary"]["ok"] == (not any(c.blocking for c in checks))
        assert report["exit_code"] == int(not report["summary"]["ok"])


def test_new_run_has_a_failing_gpu_an_unreachable_host_and_a_host_without_gpu() -> None:
    ws01, ws02, ws03 = (load_fixture(NEW_RUN, h) for h in ("ws01", "ws02", "ws03"))
    assert [c["gpu"] for c in ws01["checks"] if c["status"] == "failed"] == [1]
    assert ws02["unreachable"] is True and ws02["checks"] == []
    assert ws03["gpus"] == [] and ws03["mode"] == "cpu-only"


def test_generated_gpu_host_scales_only_the_chosen_gpu() -> None:
    report = gpu_host_report("nodeX", 4, scale={2: 0.5})
    gemm = {
        c["gpu"]: c["measurements"]["tflops"]
        for c in report["checks"]
        if c["check_id"] == "workload.perf.gemm_fp32"
    }
    assert gemm[2] == pytest.approx(gemm[0] / 2)
    assert gemm[1] == gemm[0] == gemm[3]
