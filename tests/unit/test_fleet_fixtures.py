"""The fleet report fixtures, and the generators the other test_fleet_* files build on.

tests/fixtures/reports/ holds two runs of a 3-host fleet, written in the per-host format of
verify/CONTRACTS.md section 2 with the suite's real check ids and measurements (synthetic-ws02 in
the newer run is the stand-in the verify playbook writes for an unreachable host). The GPU hosts'
host checks are the suite's own verdicts on tests/unit/conftest.py's 2x RTX 3090 snapshot (ECC
reported, GPU1 of synthetic-ws01 with 3 uncorrected errors in the newer run), their workload
results what `python -m verify` writes on two GPUs; synthetic-ws03 is a `--cpu-only` report of a
host without a GPU (its MLP failed in the older run). Their GPU figures are invented, so, like the
synthetic snapshots, every file and host is named `synthetic-*` and carries `"synthetic": true`
(a test enforces it); real recorded data lives in tests/fixtures/real/. Big fleets are generated
here from those, never committed.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from verify.checks import CATALOGUE
from verify.fleet.compare import METRICS
from verify.report.json_report import summarise
from verify.result import REPORT_SCHEMA, CheckResult
from verify.workloads import CHECK_IDS

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


# Measurements that count the host's GPUs (gpu.count, driver.nvml, driver.nvidia_smi,
# build.num_gpus): a generated host with N GPUs says N.
GPU_COUNT_KEYS = ("found", "expected", "gpu_count", "framework_gpus", "nvml_gpus")
RATE_KEYS = ("tflops", "gb_per_s")


def resummarise(report: dict[str, Any]) -> dict[str, Any]:
    """summary and exit_code as `python -m verify` derives them from the checks."""
    report["summary"] = summarise([CheckResult.from_dict(c) for c in report["checks"]])
    report["exit_code"] = int(not report["summary"]["ok"])
    return report


def _as_gpu(check: dict[str, Any], index: int, factor: float) -> dict[str, Any]:
    """One of GPU 0's results, as GPU `index` gives it (perf rates times factor)."""
    check["gpu"] = index
    check["reason"] = check["reason"].replace("gpu(0)", f"gpu({index})")
    if check["framework"]:
        check["framework"]["device"] = f"gpu({index})"
    if check["check_id"].startswith("workload.perf."):
        measurements = check["measurements"]
        for key in RATE_KEYS:
            if key in measurements:
                measurements[key] *= factor
                measurements["median_s"] /= factor
    return check


def gpu_host_report(host: str, gpu_count: int, *, scale: dict[int, float] | None = None) -> dict:
    """A healthy multi-GPU host made from ws01's GPU 0, each GPU's perf figures times scale[i]."""
    template = load_fixture(OLD_RUN, "synthetic-ws01")
    scale = scale or {}
    checks = []
    for check in copy.deepcopy([c for c in template["checks"] if c["gpu"] is None]):
        for key in GPU_COUNT_KEYS:
            if key in check["measurements"]:
                check["measurements"][key] = gpu_count
        check["reason"] = check["reason"].replace("2 GPU(s)", f"{gpu_count} GPU(s)")
        checks.append(check)
    # The suite's order: each host check for every GPU in turn, then every workload per GPU.
    gpu0_checks = [c for c in template["checks"] if c["gpu"] == 0]
    per_gpu_host = [c for c in gpu0_checks if not c["check_id"].startswith("workload.")]
    workloads = [c for c in gpu0_checks if c["check_id"].startswith("workload.")]
    build = [c for c in checks if c["check_id"].startswith("build.")]
    checks = [c for c in checks if not c["check_id"].startswith("build.")]
    for check in per_gpu_host:
        checks += [_as_gpu(copy.deepcopy(check), i, 1.0) for i in range(gpu_count)]
    checks += build
    gpus = []
    for index in range(gpu_count):
        gpu = copy.deepcopy(template["gpus"][0])
        gpu.update(index=index, uuid=f"GPU-{host}-{index}")
        gpus.append(gpu)
        factor = scale.get(index, 1.0)
        checks += [_as_gpu(copy.deepcopy(c), index, factor) for c in workloads]
    report = copy.deepcopy(template)
    report.update(host=host, gpus=gpus, checks=checks)
    return resummarise(report)


def fail_check(report: dict, check_id: str, gpu: int | None, reason: str) -> dict:
    for check in report["checks"]:
        if check["check_id"] == check_id and check["gpu"] == gpu:
            check["status"] = "failed"
            check["reason"] = reason
            return resummarise(report)
    raise KeyError((check_id, gpu))


PCIE_X8 = "PCIe link x8 of x16: reseat or move the card"


def big_fleet(run_dir: Path, hosts: int = 200, gpus: int = 8) -> dict[str, Any]:
    """A lab of `hosts` x `gpus`: every 25th host unreachable, every 10th with a failing GPU,
    host 7's GPU 3 at half speed. Returns what a reader should find in it."""
    reports = []
    expected = {"unreachable": [], "failed": [], "slow": ("node007", 3)}
    for n in range(1, hosts + 1):
        name = f"node{n:03d}"
        if n % 25 == 0:
            stand_in = load_fixture(NEW_RUN, "synthetic-ws02")
            stand_in["host"] = name
            reports.append(stand_in)
            expected["unreachable"].append(name)
            continue
        report = gpu_host_report(name, gpus, scale={3: 0.5} if n == 7 else None)
        if n % 10 == 0:
            fail_check(report, "gpu.pcie_width", n % gpus, PCIE_X8)
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
        assert report["summary"] == summarise(checks), path.name
        assert set(report["phases"]) == {"gather_s", "host_checks_s", "workloads_s"}


REAL_IDS = {spec.check_id for spec in CATALOGUE} | set(CHECK_IDS)


@pytest.mark.parametrize("run_id", [NEW_RUN, OLD_RUN])
def test_fixture_reports_use_the_suites_real_ids_and_measurements(run_id: str) -> None:
    for path in sorted((FIXTURES / run_id).glob("*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("unreachable"):
            continue
        ids = [c["check_id"] for c in report["checks"]]
        assert set(ids) == REAL_IDS, path.name
        gpus = [None] if report["mode"] == "cpu-only" else [g["index"] for g in report["gpus"]]
        for check in report["checks"]:
            if check["check_id"] in CHECK_IDS:
                assert check["gpu"] in gpus
                device = "cpu(0)" if check["gpu"] is None else f"gpu({check['gpu']})"
                assert check["framework"] == dict(report["framework"], device=device)
            else:
                assert check["framework"] is None
        # What the fleet comparison reads is there, under the names it reads.
        measured = {(c["check_id"], k) for c in report["checks"] for k in c["measurements"]}
        wanted = {(m.check_id, m.measurement) for m in METRICS}
        missing = wanted - measured
        if report["mode"] == "cpu-only":
            missing.discard(("workload.perf.gemm_fp16", "tflops"))  # mxnet: no fp16 on the CPU
        assert missing == set(), path.name


@pytest.mark.parametrize("run_id", [NEW_RUN, OLD_RUN])
def test_fixture_reports_are_marked_synthetic(run_id: str) -> None:
    paths = sorted((FIXTURES / run_id).glob("*.json"))
    assert paths
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        assert path.name.startswith("synthetic-"), path.name
        assert report["host"] == path.stem
        assert report["synthetic"] is True, path.name


def test_new_run_has_a_failing_gpu_an_unreachable_host_and_a_host_without_gpu() -> None:
    ws01, ws02, ws03 = (
        load_fixture(NEW_RUN, h) for h in ("synthetic-ws01", "synthetic-ws02", "synthetic-ws03")
    )
    assert [c["gpu"] for c in ws01["checks"] if c["status"] == "failed"] == [1]
    assert ws02["unreachable"] is True and ws02["checks"] == []
    assert ws03["gpus"] == [] and ws03["mode"] == "cpu-only"
    assert ws01["summary"]["first_failure"]["check_id"] == "gpu.ecc"


def test_generated_gpu_host_scales_only_the_chosen_gpu() -> None:
    report = gpu_host_report("nodeX", 4, scale={2: 0.5})
    gemm = {
        c["gpu"]: c["measurements"]["tflops"]
        for c in report["checks"]
        if c["check_id"] == "workload.perf.gemm_fp32"
    }
    assert gemm[2] == pytest.approx(gemm[0] / 2)
    assert gemm[1] == gemm[0] == gemm[3]
    assert [c["check_id"] for c in report["checks"]][:8] == [
        "driver.nouveau",
        "driver.nvidia_module",
        "driver.nvml",
        "driver.nvidia_smi",
        "driver.version_match",
        "driver.version",
        "driver.cuda_version",
        "gpu.count",
    ]
    count = next(c for c in report["checks"] if c["check_id"] == "gpu.count")
    assert count["measurements"]["found"] == 4 and count["reason"] == "4 GPU(s)"
    devices = {
        c["framework"]["device"] for c in report["checks"] if c["gpu"] == 3 and c["framework"]
    }
    assert devices == {"gpu(3)"}
    assert (report["summary"]["passed"], report["exit_code"]) == (4 * 20 + 11, 0)
