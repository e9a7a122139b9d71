"""Per-host reports: the live table, the JSON summary and the JUnit rendering of each status."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from verify.outcome import RunInfo
from verify.report import json_report, junit
from verify.report.terminal import TerminalTable, key_measurement
from verify.result import CheckResult, Severity, Status

PASSED, FAILED, SKIPPED = Status.PASSED, Status.FAILED, Status.SKIPPED
RESULTS = [
    CheckResult("driver.nvml", PASSED, "NVML 12.535 initialised, 2 GPU(s)"),
    CheckResult(
        "gpu.ecc", SKIPPED, "ECC: not supported on this GPU (NVMLError_NotSupported)", gpu=0
    ),
    CheckResult("gpu.pcie_width", FAILED, "PCIe link x8 of x16", gpu=1, measurements={"width": 8}),
    CheckResult(
        "gpu.persistence", FAILED, "persistence mode off", gpu=0, severity=Severity.ADVISORY
    ),
    CheckResult("gpu.row_remap", Status.ERROR, "check crashed: ValueError: x"),
    CheckResult(
        "workload.perf.gemm_fp32",
        PASSED,
        "fast enough",
        gpu=0,
        measurements={"tflops": 31.234567, "size": 8192},
        framework={"name": "torch", "version": "2.13.0", "device": "cuda:0"},
    ),
]


def _run(**changes) -> RunInfo:
    fields = {"host": "ws01", "started": "2026-11-27T10:00:00+00:00", "duration_s": 1.0}
    return RunInfo(**{**fields, "exit_code": 0, **changes})


def test_summary_counts_and_first_blocking_failure():
    summary = json_report.summarise(RESULTS)
    assert (summary["passed"], summary["failed"], summary["skipped"], summary["error"]) == (
        2,
        2,
        1,
        1,
    )
    assert summary["ok"] is False
    # The advisory failure is counted but is not the first failure.
    assert summary["first_failure"] == {
        "check_id": "gpu.pcie_width",
        "gpu": 1,
        "reason": "PCIe link x8 of x16",
    }
    assert json_report.summarise([RESULTS[0], RESULTS[3]])["ok"] is True


def test_table_prints_each_result_as_it_arrives():
    stream = io.StringIO()
    table = TerminalTable(stream, color=False)
    table.header(host="ws01", mode="gpu", framework="mxnet 1.9.1")
    lines_before = stream.getvalue().count("\n")
    table.add(RESULTS[2])
    assert stream.getvalue().count("\n") == lines_before + 1
    for item in RESULTS[3:]:
        table.add(item)
    table.footer(json_report.summarise(RESULTS), duration_s=1.25, exit_code=1)
    out = stream.getvalue().splitlines()
    assert out[0] == "labrig verify on ws01 (gpu, mxnet 1.9.1)"
    assert out[2].split() == [
        "FAIL",
        "gpu.pcie_width",
        "1",
        "PCIe",
        "link",
        "x8",
        "of",
        "x16",
        "[width=8]",
    ]
    assert out[3].startswith("WARN   gpu.persistence")
    assert out[4].startswith("ERROR  gpu.row_remap")
    assert "tflops=31.23" in out[5] and "\033[" not in stream.getvalue()
    assert out[-2] == "NOT OK: 2 passed, 2 failed, 1 skipped, 1 error in 1.2 s (exit 1)"
    assert out[-1] == "first failure: gpu.pcie_width on GPU 1: PCIe link x8 of x16"


def test_color_only_when_asked():
    stream = io.StringIO()
    TerminalTable(stream, color=True).add(RESULTS[0])
    assert "\033[32mPASS" in stream.getvalue()
    # A pipe (CI log) gets no escape codes by default.
    plain = io.StringIO()
    TerminalTable(plain).add(RESULTS[0])
    assert "\033[" not in plain.getvalue()


def test_key_measurement_prefers_the_headline_numbers():
    assert key_measurement({"size": 8192, "tflops": 31.234567}) == "tflops=31.23"
    assert key_measurement({"accuracy": 1.0, "final_loss": 0.0123456}) == (
        "accuracy=1 final_loss=0.01235"
    )
    assert key_measurement({"unrelated": 1}) == ""


def test_junit_one_testcase_per_result_with_matching_counts():
    root = junit.build(RESULTS, _run(duration_s=3.5))
    root = ET.fromstring(ET.tostring(root))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "driver.nvml",
        "gpu.ecc[gpu0]",
        "gpu.pcie_width[gpu1]",
        "gpu.persistence[gpu0]",
        "gpu.row_remap",
        "workload.perf.gemm_fp32[gpu0]",
    ]
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == (
        "6",
        "1",
        "1",
        "1",
    )
    assert cases[2].find("failure").get("message") == "PCIe link x8 of x16"
    assert cases[3].find("failure") is None
    assert cases[4].find("error") is not None
    assert {case.get("classname") for case in cases} == {"ws01"}
    assert suite.get("name") == "ws01"
    properties = {p.get("name"): p.get("value") for p in cases[5].iter("property")}
    assert properties["framework"] == '{"device": "cuda:0", "name": "torch", "version": "2.13.0"}'
    assert '"tflops": 31.234567' in properties["measurements"]


def test_report_from_a_snapshot_without_nvml(snapshot_of):
    snapshot = snapshot_of("nvml-absent")
    report = json_report.build_report(snapshot, RESULTS, _run(duration_s=1.0, exit_code=1))
    assert report["gpus"] == []
    assert report["versions"]["driver"] is None and report["versions"]["cuda_driver"] is None
    assert report["framework"] == {"name": "mxnet", "version": None}
    assert [c["check_id"] for c in report["checks"]] == [r.check_id for r in RESULTS]
    assert CheckResult.from_dict(report["checks"][5]) == RESULTS[5]
