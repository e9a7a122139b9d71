"""`python -m verify`: exit codes, selection, expectations sources, reports, workload hand-off."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import verify.workloads.runner
from verify import cli
from verify import snapshot as snapshot_module
from verify.result import CheckResult, Status

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workloads(monkeypatch):
    """Stand-in for verify.workloads.runner.run_workloads that records how it was called."""
    calls = []
    outcomes = {"status": Status.PASSED}

    def run_workloads(
        *,
        framework,
        gpu_indices,
        cpu_only,
        expectations,
        only,
        skip,
        on_result,
        gpu_names,
        probe,
        contexts,
    ):
        calls.append(
            {
                "framework": framework,
                "gpu_indices": gpu_indices,
                "cpu_only": cpu_only,
                "expectations": expectations,
                "only": only,
                "skip": skip,
                "gpu_names": gpu_names,
                "probe": probe,
                "contexts": contexts,
            }
        )
        results = []
        devices = [None] if cpu_only else gpu_indices
        for gpu in devices:
            for check_id in ("workload.smoke", "workload.mlp"):
                item = CheckResult(
                    check_id,
                    outcomes["status"],
                    "stand-in",
                    gpu=gpu,
                    measurements={"accuracy": 1.0},
                    framework={"name": framework, "version": "x", "device": "cpu"},
                )
                if on_result:
                    on_result(item)
                results.append(item)
        return results

    monkeypatch.setattr(verify.workloads.runner, "run_workloads", run_workloads)
    return types_namespace(calls=calls, outcomes=outcomes)


def types_namespace(**kwargs):
    import types

    return types.SimpleNamespace(**kwargs)


@pytest.fixture
def no_expectations_dir(tmp_path):
    empty = tmp_path / "expectations.d"
    empty.mkdir()
    return ["--expectations-dir", str(empty)]


def fixture_file(name):
    return str(REPO / "tests" / "fixtures" / "snapshots" / f"synthetic-{name}.json")


def run(argv, capsys):
    code = cli.main(["--no-color", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_healthy_snapshot_exits_0_with_reports(tmp_path, capsys, no_expectations_dir):
    report, junit_path = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, _ = run(
        [
            *no_expectations_dir,
            "--snapshot",
            fixture_file("healthy-2x-rtx3090"),
            "--gpu-count",
            "2",
            "--driver-version",
            "535.216.03",
            "--json",
            str(report),
            "--junit",
            str(junit_path),
        ],
        capsys,
    )
    assert code == 0
    assert "OK: " in out and "exit 0" in out
    data = json.loads(report.read_text())
    assert data["schema"] == "labrig.verify/1"
    assert data["host"] == "synthetic-rtx3090"
    assert data["mode"] == "gpu" and data["exit_code"] == 0
    assert data["framework"] == {"name": "mxnet", "version": "1.9.1"}
    assert data["versions"]["driver"] == "535.216.03"
    assert data["versions"]["cuda_driver"] == "12.2"
    assert data["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA GeForce RTX 3090",
        "uuid": data["gpus"][1]["uuid"],
        "serial": None,
        "vbios": "94.02.42.00.A9",
        "pci_bus_id": "00000000:21:00.0",
        "driver": "535.216.03",
        "compute_capability": "8.6",
        "memory_total_mib": 24576,
        "mig_mode": None,
        "link": {"current": "Gen1 x16", "max": "Gen4 x16", "host_max": "Gen4 x16"},
    }
    assert data["summary"]["ok"] is True and data["summary"]["first_failure"] is None
    workload = [c for c in data["checks"] if c["check_id"] == "workload"]
    assert workload[0]["status"] == "skipped"
    assert workload[0]["reason"] == cli.SNAPSHOT_REPLAY_REASON
    suite = ET.parse(junit_path).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(data["checks"]) == int(suite.get("tests"))
    names = {case.get("name") for case in cases}
    assert {"gpu.ecc[gpu0]", "gpu.ecc[gpu1]", "driver.nvml"} <= names
    assert suite.get("failures") == "0"


def test_failing_snapshot_exits_1_and_names_first_failure(tmp_path, capsys, no_expectations_dir):
    report = tmp_path / "r.json"
    code, out, _ = run(
        [*no_expectations_dir, "--snapshot", fixture_file("ecc-errors"), "--json", str(report)],
        capsys,
    )
    assert code == 1
    summary = json.loads(report.read_text())["summary"]
    assert summary["first_failure"] == {
        "check_id": "gpu.ecc",
        "gpu": 1,
        "reason": "2 volatile uncorrected ECC error(s) since boot",
    }
    assert summary["failed"] == 1
    assert "first failure: gpu.ecc on GPU 1" in out


def test_advisory_failure_keeps_exit_0_and_junit_green(tmp_path, capsys, no_expectations_dir):
    junit_path = tmp_path / "r.xml"
    code, out, _ = run(
        [
            *no_expectations_dir,
            "--snapshot",
            fixture_file("persistence-off"),
            "--junit",
            str(junit_path),
        ],
        capsys,
    )
    assert code == 0
    assert "WARN   gpu.persistence" in out
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite.get("failures") == "0"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "gpu.persistence[gpu0]")
    assert case.find("system-out").text.startswith("advisory failed: persistence mode off")


def test_junit_failure_and_skip_elements(tmp_path, capsys, no_expectations_dir):
    junit_path = tmp_path / "r.xml"
    run(
        [*no_expectations_dir, "--snapshot", fixture_file("pcie-x8"), "--junit", str(junit_path)],
        capsys,
    )
    suite = ET.parse(junit_path).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = cases["gpu.pcie_width[gpu1]"].find("failure")
    assert failure.get("message") == (
        "Gen4 x8 (card max Gen4 x16, host max Gen4 x16) at 96 % utilisation: "
        "x8 below the x16 both ends support: reseat or move the card"
    )
    assert cases["gpu.pcie_width[gpu0]"].find("failure") is None
    skipped = cases["gpu.ecc[gpu0]"].find("skipped")
    assert "NVMLError_NotSupported" in skipped.get("message")
    assert suite.get("failures") == "1"
    assert int(suite.get("skipped")) >= 6


def test_only_and_skip_by_id_and_prefix(tmp_path, capsys, no_expectations_dir):
    report = tmp_path / "r.json"
    snap = fixture_file("healthy-2x-rtx3090")
    run(
        [*no_expectations_dir, "--snapshot", snap, "--only", "gpu.ecc", "--json", str(report)],
        capsys,
    )
    ids = [c["check_id"] for c in json.loads(report.read_text())["checks"]]
    assert ids == ["gpu.ecc", "gpu.ecc"]
    run(
        [
            *no_expectations_dir,
            "--snapshot",
            snap,
            "--skip",
            "gpu",
            "workload",
            "--json",
            str(report),
        ],
        capsys,
    )
    ids = {c["check_id"] for c in json.loads(report.read_text())["checks"]}
    assert ids and not {i for i in ids if i.startswith(("gpu", "workload"))}
    run(
        [
            *no_expectations_dir,
            "--snapshot",
            snap,
            "--only",
            "driver",
            "build.import",
            "--json",
            str(report),
        ],
        capsys,
    )
    ids = {c["check_id"] for c in json.loads(report.read_text())["checks"]}
    assert ids == {
        "driver.nouveau",
        "driver.nvidia_module",
        "driver.nvml",
        "driver.nvidia_smi",
        "driver.version_match",
        "driver.version",
        "driver.cuda_version",
        "build.import",
    }


def test_unknown_selector_is_bad_usage(capsys, no_expectations_dir):
    code, _, err = run(
        [
            *no_expectations_dir,
            "--snapshot",
            fixture_file("healthy-2x-rtx3090"),
            "--only",
            "gpu.ec",
        ],
        capsys,
    )
    assert code == 2
    assert "unknown check id or prefix: gpu.ec" in err


def test_bad_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--gpu-count", "two"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        cli.main(["--snapshot", "a", "--record-snapshot", "b"])
    assert raised.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("gpu_count: [2\n", "bad.yml line 2"),
        ("gpu_count: two\n", "gpu_count must be a non-negative integer, got 'two'"),
        ("- a list\n", "expected a mapping"),
        ("mxnet_features: {CUDA: maybe}\n", "mxnet_features must map feature names to true/false"),
        ("framework: tensorflow\n", "framework must be one of mxnet, torch"),
    ],
)
def test_bad_expectations_file_exits_2_with_one_line(tmp_path, capsys, content, message):
    directory = tmp_path / "expectations.d"
    directory.mkdir()
    (directory / "bad.yml").write_text(content)
    code, _, err = run(
        [
            "--expectations-dir",
            str(directory),
            "--snapshot",
            fixture_file("healthy-2x-rtx3090"),
        ],
        capsys,
    )
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_missing_expect_file_or_snapshot_exits_2(tmp_path, capsys, no_expectations_dir):
    code, _, err = run(
        [
            *no_expectations_dir,
            "--expect",
            str(tmp_path / "nope.yml"),
            "--snapshot",
            fixture_file("healthy-2x-rtx3090"),
        ],
        capsys,
    )
    assert code == 2 and "cannot read expectations file" in err
    code, _, err = run([*no_expectations_dir, "--snapshot", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "cannot read snapshot" in err


def test_expectations_merge_order_files_then_flags(tmp_path, capsys):
    directory = tmp_path / "expectations.d"
    directory.mkdir()
    (directory / "10-hardware.yml").write_text("gpu_count: 4\n")
    (directory / "20-driver.yml").write_text('driver_version: "535.216.03"\n')
    (directory / "90-inventory.yml").write_text("gpu_count: 3\nsome_future_key: 1\n")
    extra = tmp_path / "extra.yml"
    extra.write_text("gpu_count: 2\n")
    report = tmp_path / "r.json"
    base = ["--expectations-dir", str(directory), "--snapshot", fixture_file("healthy-2x-rtx3090")]
    code, _, err = run(
        [*base, "--only", "gpu.count", "driver.version", "--json", str(report)], capsys
    )
    assert code == 1
    checks = {c["check_id"]: c for c in json.loads(report.read_text())["checks"]}
    assert checks["gpu.count"]["reason"] == "2 GPU(s), expected 3"
    assert checks["driver.version"]["status"] == "passed"
    assert "unknown expectation 'some_future_key' ignored" in err
    code, _, _ = run([*base, "--expect", str(extra), "--only", "gpu.count"], capsys)
    assert code == 0
    code, _, _ = run(
        [*base, "--expect", str(extra), "--gpu-count", "5", "--only", "gpu.count"], capsys
    )
    assert code == 1


def test_cpu_only_live_run_calls_workloads_on_the_cpu(
    monkeypatch, tmp_path, capsys, workloads, fake_probe, no_expectations_dir
):
    monkeypatch.setattr(snapshot_module, "probe_framework", fake_probe)
    report = tmp_path / "r.json"
    code, out, _ = run(
        [
            *no_expectations_dir,
            "--cpu-only",
            "--framework",
            "torch",
            "--mlp-samples",
            "200",
            "--json",
            str(report),
        ],
        capsys,
    )
    assert code == 0, out
    [call] = workloads.calls
    assert call["cpu_only"] is True and call["gpu_indices"] == []
    assert call["framework"] == "torch"
    assert call["expectations"]["mlp_samples"] == 200
    # The snapshot's probe goes along, so the runner does not probe the framework again.
    assert call["probe"] == fake_probe("torch")
    data = json.loads(report.read_text())
    assert data["mode"] == "cpu-only"
    assert data["framework"] == {"name": "torch", "version": "2.13.0"}
    gpu_checks = [c for c in data["checks"] if c["check_id"].startswith(("gpu.", "driver."))]
    assert {c["reason"] for c in gpu_checks} == {"--cpu-only: GPU checks not run"}
    assert [c["check_id"] for c in data["checks"][-2:]] == ["workload.smoke", "workload.mlp"]
    # The table prints each workload result as it arrives.
    assert "workload.mlp" in out and "accuracy=1" in out


def test_workload_failure_exits_1_and_skip_filters_its_results(
    monkeypatch, tmp_path, capsys, workloads, fake_probe, no_expectations_dir
):
    monkeypatch.setattr(snapshot_module, "probe_framework", fake_probe)
    workloads.outcomes["status"] = Status.FAILED
    report = tmp_path / "r.json"
    code, _, _ = run(
        [*no_expectations_dir, "--cpu-only", "--skip", "workload.mlp", "--json", str(report)],
        capsys,
    )
    assert code == 1
    assert workloads.calls[0]["skip"] == {"workload.mlp"}
    ids = [c["check_id"] for c in json.loads(report.read_text())["checks"]]
    assert "workload.smoke" in ids and "workload.mlp" not in ids
    code, _, _ = run([*no_expectations_dir, "--cpu-only", "--skip", "workload"], capsys)
    assert code == 0 and len(workloads.calls) == 1


def test_live_run_without_gpus_fails_the_workloads_truthfully(
    monkeypatch, tmp_path, capsys, workloads, fake_probe, no_expectations_dir, snapshot_of
):
    monkeypatch.setattr(
        snapshot_module, "gather", lambda framework: snapshot_of("driver-not-loaded")
    )
    report = tmp_path / "r.json"
    code, _, _ = run([*no_expectations_dir, "--json", str(report)], capsys)
    assert code == 1
    assert workloads.calls[0]["gpu_indices"] == []
    checks = json.loads(report.read_text())["checks"]
    assert checks[-1]["check_id"] == "workload"
    assert checks[-1]["reason"] == (
        "no GPU to run the workload checks on: NVML: driver not loaded (NVMLError_DriverNotLoaded)"
    )


def test_gpu_run_hands_every_gpu_to_the_workloads(
    monkeypatch, capsys, workloads, no_expectations_dir, snapshot_of
):
    monkeypatch.setattr(
        snapshot_module, "gather", lambda framework: snapshot_of("healthy-2x-rtx3090")
    )
    code, _, _ = run([*no_expectations_dir], capsys)
    assert code == 0
    assert workloads.calls[0]["gpu_indices"] == [0, 1]
    assert workloads.calls[0]["cpu_only"] is False
    assert workloads.calls[0]["gpu_names"] == {
        0: "NVIDIA GeForce RTX 3090",
        1: "NVIDIA GeForce RTX 3090",
    }


def test_crashing_or_missing_workloads(monkeypatch, capsys, fake_probe, no_expectations_dir):
    monkeypatch.setattr(snapshot_module, "probe_framework", fake_probe)

    def crash(**_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(verify.workloads.runner, "run_workloads", crash)
    code, out, _ = run([*no_expectations_dir, "--cpu-only"], capsys)
    assert code == 1 and "workload runner crashed: RuntimeError: boom" in out
    monkeypatch.delattr(verify.workloads.runner, "run_workloads")
    code, _, err = run([*no_expectations_dir, "--cpu-only"], capsys)
    assert code == 2 and "workload checks unavailable" in err


def test_record_then_replay_gives_the_same_host_results(
    monkeypatch, tmp_path, capsys, workloads, fake_probe, no_expectations_dir
):
    monkeypatch.setattr(snapshot_module, "probe_framework", fake_probe)
    recorded, live, replay = (
        tmp_path / "snap.json",
        tmp_path / "live.json",
        tmp_path / "replay.json",
    )
    live_code, _, _ = run(
        [
            *no_expectations_dir,
            "--record-snapshot",
            str(recorded),
            "--skip",
            "workload",
            "--json",
            str(live),
        ],
        capsys,
    )
    replay_code, _, _ = run(
        [
            *no_expectations_dir,
            "--snapshot",
            str(recorded),
            "--skip",
            "workload",
            "--json",
            str(replay),
        ],
        capsys,
    )
    assert live_code == replay_code

    def judged(path):
        return [
            (c["check_id"], c["gpu"], c["status"], c["reason"])
            for c in json.loads(path.read_text())["checks"]
        ]

    assert judged(live) == judged(replay)


def test_list_checks(capsys):
    assert cli.main(["--list-checks"]) == 0
    out = capsys.readouterr().out
    for check_id in ("driver.version_match", "gpu.row_remap", "build.num_gpus", "workload.mlp"):
        assert check_id in out


def test_module_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "verify", "--list-checks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "gpu.ecc" in proc.stdout


def test_workload_selectors_are_checked_against_the_workload_ids(capsys, no_expectations_dir):
    snap = ["--snapshot", fixture_file("healthy-2x-rtx3090")]
    code, _, err = run([*no_expectations_dir, *snap, "--skip", "workload.mlpp"], capsys)
    assert code == 2 and "workload.mlpp" in err
    code, out, _ = run([*no_expectations_dir, *snap, "--only", "gpu.*", "*.gemm_*"], capsys)
    assert code == 0
    assert "gpu.ecc" in out and "driver.nvml" not in out
    # A pattern that selects workload checks still reaches the workload stage.
    assert cli.SNAPSHOT_REPLAY_REASON in out
    code, out, _ = run([*no_expectations_dir, *snap, "--only", "gpu.ecc"], capsys)
    assert cli.SNAPSHOT_REPLAY_REASON not in out


def test_unwritable_report_is_a_suite_error(tmp_path, capsys, no_expectations_dir):
    target = tmp_path / "missing-dir" / "r.json"
    code, _, err = run(
        [
            *no_expectations_dir,
            "--snapshot",
            fixture_file("healthy-2x-rtx3090"),
            "--json",
            str(target),
        ],
        capsys,
    )
    assert code == 2
    assert err.strip() == f"verify: {target}: No such file or directory"


@pytest.mark.parametrize(
    "bad",
    [
        ["--json", "{tmp}/missing-dir/r.json"],
        ["--junit", "{tmp}"],
        ["--expect", "{tmp}/floor-zero.yml"],
        ["--expect", "{tmp}/accuracy-zero.yml"],
    ],
)
def test_bad_outputs_and_expectations_stop_before_any_check_runs(tmp_path, capsys, bad):
    (tmp_path / "floor-zero.yml").write_text("perf_floor_scale: 0\n")
    (tmp_path / "accuracy-zero.yml").write_text("mlp_min_accuracy: 0\n")
    argv = [arg.format(tmp=tmp_path) for arg in bad]
    argv += ["--expectations-dir", str(tmp_path / "none"), "--snapshot"]
    argv.append(fixture_file("healthy-2x-rtx3090"))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == "", "a check ran before the bad value was refused"
    assert err.count("\n") == 1 and err.startswith("verify: ")


def test_record_snapshot_keeps_nvidia_smi_xml_beside_it(tmp_path):
    table = cli.TerminalTable(io.StringIO(), color=False)
    snapshot_path = str(tmp_path / "ws01.json")
    cli.record_smi_xml(snapshot_path, table, run=lambda: ("<nvidia_smi_log/>\n", ""))
    assert (tmp_path / "ws01.nvidia-smi.xml").read_text() == "<nvidia_smi_log/>\n"
    cli.record_smi_xml(
        str(tmp_path / "ws02.json"), table, run=lambda: (None, "exited 9: no driver")
    )
    assert not (tmp_path / "ws02.nvidia-smi.xml").exists()
    assert "not kept beside the snapshot: exited 9: no driver" in table.stream.getvalue()


def test_junit_names_the_card_of_each_gpu_testcase(tmp_path, capsys, no_expectations_dir):
    junit_path = tmp_path / "r.xml"
    snapshot = fixture_file("healthy-2x-rtx-a6000")
    run([*no_expectations_dir, "--snapshot", snapshot, "--junit", str(junit_path)], capsys)
    cases = {c.get("name"): c for c in ET.parse(junit_path).getroot().iter("testcase")}
    properties = {p.get("name"): p.get("value") for p in cases["gpu.ecc[gpu1]"].iter("property")}
    assert properties["gpu_name"] == "NVIDIA RTX A6000"
    assert properties["gpu_serial"] == "1324021000001"
    assert properties["gpu_vbios"] == "94.02.42.00.A9"
    assert properties["gpu_pci_bus_id"] == "00000000:21:00.0"
    assert properties["gpu_uuid"].startswith("GPU-")
    assert properties["driver"] == "535.216.03"
    assert (properties["link_current"], properties["link_max"]) == ("Gen1 x16", "Gen4 x16")
    host_case = {p.get("name") for p in cases["driver.nvml"].iter("property")}
    assert "gpu_uuid" not in host_case
