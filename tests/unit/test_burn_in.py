"""Burn-in: every verdict can fail (fault injection through the real CPU worker, and recorded
series for the NVML verdicts), the orchestration runs end to end on the CPU, and a stopped run
still writes what it measured."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from verify.burn_in import dcgm, plots, verdicts
from verify.burn_in.cli import main as burn_in_main
from verify.burn_in.dtypes import gemm_dtypes
from verify.burn_in.report import BURN_IN_SCHEMA
from verify.burn_in.sampling import KernelTail, XidWatch
from verify.burn_in.series import SAMPLE_KEYS, DeviceRecord, columns, rows
from verify.burn_in.worker import Worker, WorkerSpec, mismatch_ranges, pattern
from verify.fleet.__main__ import main as fleet_main
from verify.report.json_report import summarise
from verify.result import CheckResult, Status

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "burn_in"


def fixture_record(name: str) -> DeviceRecord:
    return DeviceRecord.from_dict(json.loads((FIXTURES / name).read_text()))


def cpu_worker(framework: str, seconds: float, **inject) -> Worker:
    spec = WorkerSpec(
        key="cpu",
        framework=framework,
        gpu=None,
        ordinal=None,
        seconds=seconds,
        size=64,
        check_every=2,
        memory_bytes=2 * 2**20,
        memory_share=0.8,
        copy_bytes=2**16,
        cycle_s=max(0.3, seconds / 3),
        inject=inject,
    )
    worker = Worker(spec, queue.Queue(), threading.Event())
    worker.run()
    return worker


def record_of(worker: Worker) -> DeviceRecord:
    record = DeviceRecord(gpu=None, label="cpu")
    record.gemm, record.memory, record.copies = worker.gemm, worker.memory, worker.copies
    return record


@pytest.mark.parametrize("framework", ["mxnet", "torch"])
def test_cpu_worker_clean_run_passes(framework):
    record = record_of(cpu_worker(framework, 1.5))
    assert verdicts.judge_gemm(record).status is Status.PASSED
    assert verdicts.judge_memory(record).status is Status.PASSED
    assert verdicts.judge_copies(record).status is Status.PASSED
    assert record.gemm["comparisons"] >= 1 and record.memory["passes"]
    reason = verdicts.judge_gemm(record).reason
    if framework == "torch":
        assert record.gemm["dtypes"] == ["float16", "bfloat16", "float32"]
        assert record.gemm["dtypes_not_run"] == {} and "not run" not in reason
    else:
        assert record.gemm["dtypes"] == ["float32"]
        assert set(record.gemm["dtypes_not_run"]) == {"float16", "bfloat16"}
        assert "bfloat16 not run: MXNet 1.9's dot has no bfloat16 kernel" in reason


TORCH_KERNELS = frozenset({"float16", "float32", "float64"})
MXNET_GPU_KERNELS = frozenset({"float16", "float32", "float64"})


@pytest.mark.parametrize(
    ("framework", "usable", "on_gpu", "capability", "runs", "not_run"),
    [
        ("torch", TORCH_KERNELS, True, (8, 6), ["float16", "bfloat16", "float32"], {}),
        ("torch", TORCH_KERNELS, True, (9, 0), ["float16", "bfloat16", "float32"], {}),
        ("torch", TORCH_KERNELS, True, (7, 5), ["float16", "float32"], {"bfloat16": "7.5"}),
        ("torch", TORCH_KERNELS, True, None, ["float16", "float32"], {"bfloat16": "unknown"}),
        ("torch", TORCH_KERNELS, False, None, ["float16", "bfloat16", "float32"], {}),
        ("mxnet", MXNET_GPU_KERNELS, True, (9, 0), ["float16", "float32"], {"bfloat16": "MXNet"}),
        (
            "mxnet",
            frozenset({"float32", "float64"}),
            False,
            None,
            ["float32"],
            {"bfloat16": "no bfloat16 kernel", "float16": "no float16 kernel on the CPU"},
        ),
    ],
)
def test_gemm_dtypes_are_the_cards_mix_and_say_why_not(
    framework, usable, on_gpu, capability, runs, not_run
):
    run, why = gemm_dtypes(framework, usable, on_gpu=on_gpu, compute_capability=capability)
    assert run == runs
    assert set(why) == set(not_run)
    for dtype, words in not_run.items():
        assert words in why[dtype]


def test_corrupted_gemm_result_at_iteration_k_fails_naming_it():
    record = record_of(cpu_worker("torch", 1.0, gemm=3))
    record.gpu, record.uuid = 0, "GPU-test"
    judgement = verdicts.judge_gemm(record)
    assert judgement.status is Status.FAILED
    assert "silent data corruption on GPU 0 (GPU-test)" in judgement.reason
    assert "iteration 3 " in judgement.reason and "in 1 of 4096 elements" in judgement.reason


def test_memory_mismatch_fails_with_the_address_range():
    record = record_of(cpu_worker("torch", 1.5, memory=True))
    judgement = verdicts.judge_memory(record)
    assert judgement.status is Status.FAILED
    assert "bytes 0x14-0x17" in judgement.reason and "1 words differ" in judgement.reason


def test_patterns_and_ranges():
    assert pattern("walking_ones", 0, 33, 0, 1).tolist()[:3] == [1, 2, 4]
    assert pattern("walking_ones", 0, 33, 0, 1)[32] == 1
    assert pattern("address", 10, 2, 0, 1).tolist() == [40, 44]
    assert (pattern("random", 0, 8, 2, 5) == pattern("random", 0, 8, 2, 5)).all()
    got = pattern("address", 0, 16, 0, 1)
    got[3] ^= 1
    got[9] ^= 1
    assert mismatch_ranges(got, pattern("address", 0, 16, 0, 1), 4096) == [
        {"start": 4096 + 12, "end": 4096 + 39, "words": 2}
    ]


def test_sustained_thermal_slowdown_fails():
    judgement = verdicts.judge_thermal(fixture_record("thermal_slowdown.json"))
    assert judgement.status is Status.FAILED
    assert "HW thermal slowdown" in judgement.reason
    assert judgement.measurements["slowdown_share"] > verdicts.SLOWDOWN_SHARE_LIMIT


def test_temperature_at_the_slowdown_threshold_fails():
    record = fixture_record("power_capped.json")
    record.samples[30]["temperature_c"] = 93
    judgement = verdicts.judge_thermal(record)
    assert judgement.status is Status.FAILED and "slowdown threshold (93 °C)" in judgement.reason


def test_link_dropping_to_x4_under_load_fails():
    judgement = verdicts.judge_pcie(fixture_record("link_x4.json"))
    assert judgement.status is Status.FAILED
    assert "Gen4 x16 to Gen4 x4" in judgement.reason and "30 s" in judgement.reason


def test_power_capping_is_reported_not_failed():
    record = fixture_record("power_capped.json")
    clocks = verdicts.judge_clocks(record)
    assert clocks.status is Status.PASSED and "power limit (350.0 W)" in clocks.reason
    assert verdicts.judge_thermal(record).status is Status.PASSED


def test_low_clock_under_load_is_flagged_advisory():
    record = fixture_record("thermal_slowdown.json")
    for sample in record.samples:
        sample["sm_clock_mhz"] = 900
    assert verdicts.judge_clocks(record).status is Status.FAILED
    results = verdicts.judge_device(record)
    clocks = next(r for r in results if r.check_id == "burnin.clocks")
    assert not clocks.blocking


def test_new_uncorrectable_ecc_fails():
    record = fixture_record("power_capped.json")
    record.samples[-1]["ecc_uncorrected"] = 2
    assert verdicts.judge_ecc(record).status is Status.FAILED


def test_new_xid_in_the_kernel_log_fails_old_one_does_not():
    logs = iter(
        [
            (FIXTURES / "kern-before.log").read_text().splitlines(),
            (FIXTURES / "kern-after.log").read_text().splitlines(),
        ]
    )
    watch = XidWatch(lambda: {"value": {"lines": next(logs)}})
    watch.start()
    watch.poll()
    record = fixture_record("power_capped.json")
    record.xid_lines = watch.lines_for(record.pci_bus_id)
    judgement = verdicts.judge_xid(record)
    assert judgement.status is Status.FAILED and "Xid 79" in judgement.reason
    assert "Xid 13" not in judgement.reason
    assert watch.lines_for("0000:3b:00.0") == []


def test_kernel_tail_reads_only_what_is_printed_after_it_opened(tmp_path):
    """/dev/kmsg's record form, in a file: the Xid printed before the run is not new."""
    kmsg = tmp_path / "kmsg"
    before = (FIXTURES / "kern-before.log").read_text().splitlines()
    after = (FIXTURES / "kern-after.log").read_text().splitlines()[len(before) :]
    kmsg.write_text("".join(f"4,{n},{n}000,-;{line}\n" for n, line in enumerate(before)))
    watch = XidWatch(
        lambda: pytest.fail("the whole log is not read"), open_tail=lambda: KernelTail(str(kmsg))
    )
    watch.start()
    with kmsg.open("a") as log:
        for n, line in enumerate(after):
            log.write(f"3,{100 + n},{n}500,-;{line}\n SUBSYSTEM=pci\n")
    watch.poll()
    watch.close()
    record = fixture_record("power_capped.json")
    record.xid_lines = watch.lines_for(record.pci_bus_id)
    judgement = verdicts.judge_xid(record)
    assert judgement.status is Status.FAILED and "Xid 79" in judgement.reason
    assert "Xid 13" not in judgement.reason and not any("SUBSYSTEM" in x for x in watch.new)


def test_kernel_log_read_whole_where_kmsg_cannot_open():
    def no_kmsg():
        raise PermissionError("/dev/kmsg")

    watch = XidWatch(lambda: {"value": {"lines": ["old"]}}, open_tail=no_kmsg)
    watch.start()
    assert watch.tail is None and watch.baseline == {"old": 1}


def test_unreadable_kernel_log_is_skipped_not_passed():
    watch = XidWatch(lambda: {"error": "PermissionError"})
    watch.start()
    record = fixture_record("power_capped.json")
    record.xid_lines = watch.lines_for(record.pci_bus_id)
    assert verdicts.judge_xid(record).status is Status.SKIPPED


def test_series_columns_round_trip():
    record = fixture_record("link_x4.json")
    assert rows(columns(record.samples)) == record.samples
    assert DeviceRecord.from_dict(record.to_dict()) == record


def test_dcgm_absent_present_and_failing():
    assert dcgm.run_diag(2, which=lambda _name: None) == {"present": False, "level": 2}

    class Proc:
        returncode = 0
        stderr = ""
        stdout = json.dumps(
            {
                "category": [
                    {
                        "tests": [
                            {"test_name": "Memory", "status": "Pass"},
                            {"test_name": "PCIe", "status": "Fail", "warnings": "x4"},
                        ]
                    }
                ]
            }
        )

    seen = {}

    def run(argv, **_kw):
        seen["argv"] = argv
        return Proc()

    result = dcgm.run_diag(3, which=lambda _name: "/usr/bin/dcgmi", run=run)
    assert seen["argv"] == ["/usr/bin/dcgmi", "diag", "-r", "3", "-j"]
    assert result["tests"] == 2 and result["failed"][0].startswith("PCIe")
    assert verdicts.judge_dcgm(result).status is Status.FAILED
    assert verdicts.judge_dcgm({"present": False}).status is Status.SKIPPED


def test_cli_cpu_run_end_to_end_with_injected_corruption(tmp_path, capsys):
    report_path = tmp_path / "ws.burn-in.json"
    html_path = tmp_path / "ws.burn-in.html"
    code = burn_in_main(
        [
            "--minutes", "0.05", "--cpu-only", "--framework", "torch", "--host", "ws",
            "--json", str(report_path), "--html", str(html_path), "--size", "48",
            "--memory-mib", "1", "--inject", "gemm=4", "--expectations-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["schema"] == "labrig.burn-in/1" and report["mode"] == "cpu-only"
    checks = {c["check_id"]: c for c in report["checks"]}
    assert checks["burnin.gemm"]["status"] == "failed"
    assert checks["burnin.run"]["status"] == "passed"
    assert checks["burnin.memory"]["status"] == "passed"
    device = report["burn_in"]["devices"][0]
    assert device["gemm_series"]["t"] and device["gemm_series"]["tflops"]
    assert contract_problems(report) == []
    page = html_path.read_text()
    assert page.count("<svg") == 4 and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_minutes_must_be_positive(capsys):
    for bad in ("0", "-1", "abc", "nan"):
        with pytest.raises(SystemExit) as stop:
            burn_in_main(["--minutes", bad, "--cpu-only"])
        assert stop.value.code == 2


@pytest.mark.parametrize("signame", ["SIGHUP", "SIGINT"])
def test_stopped_run_stops_the_load_and_writes_partial_results(tmp_path, signame):
    report = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "verify", "burn-in", "--minutes", "2", "--cpu-only",
         "--framework", "torch", "--json", str(report), "--size", "64", "--memory-mib", "1",
         "--expectations-dir", str(tmp_path), "--no-color"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    line = ""
    while "under load" not in line and time.time() < deadline:
        line = proc.stdout.readline()
    time.sleep(3)
    began = time.time()
    proc.send_signal(getattr(signal, signame))
    output, _ = proc.communicate(timeout=60)
    assert time.time() - began < 20, output
    assert proc.returncode == 1, output
    data = json.loads(report.read_text())
    run = next(c for c in data["checks"] if c["check_id"] == "burnin.run")
    assert run["status"] == "failed" and f"stopped by {signame}" in run["reason"]
    assert data["burn_in"]["interrupted"] == signame
    # What was measured before the signal is kept (under CI load, possibly only the reference run).
    assert data["burn_in"]["devices"][0]["gemm"]["iterations"] >= 1
    # No worker outlives the run.
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
    )
    assert not children.stdout.strip()


def test_fleet_report_shows_burn_in_beside_verify(tmp_path):
    earlier, run = tmp_path / "20261127T100000Z", tmp_path / "20261127T110000Z"
    earlier.mkdir()
    run.mkdir()
    source = ROOT / "tests" / "fixtures" / "reports" / "20261127T102233Z" / "synthetic-ws01.json"
    (earlier / "synthetic-ws01.json").write_text(source.read_text())
    device = json.loads((FIXTURES / "link_x4.json").read_text())
    record = DeviceRecord.from_dict(device)
    results = verdicts.judge(
        {"minutes": 1, "duration_s": 60.0, "devices": 1}, [record], {"present": False}
    )
    burn_in = {
        "schema": "labrig.burn-in/1",
        "host": "synthetic-ws01",
        "started": "2026-11-27T11:00:00+00:00",
        "checks": [r.to_dict() for r in results],
        "exit_code": 1,
        "burn_in": {"minutes": 1, "duration_s": 60.0, "devices": [device]},
    }
    (run / "synthetic-ws01.burn-in.json").write_text(json.dumps(burn_in))
    assert fleet_main(["merge", str(run), "--carry-from", str(tmp_path), "--width", "100"]) == 1
    fleet = json.loads((run / "fleet.json").read_text())
    (host,) = fleet["hosts"]
    ids = [c["check_id"] for c in host["checks"]]
    assert "gpu.ecc" in ids and "burnin.pcie" in ids
    assert host["burn_in"]["ok"] is False
    assert host["burn_in"]["first_failure"]["check_id"] == "burnin.pcie"
    assert any(r["check_id"] == "burnin.pcie" for r in fleet["rma"]) or fleet["rma"]
    assert '"burnin"' in (run / "fleet.html").read_text()
    assert (tmp_path / "latest").resolve() == run.resolve()


def test_plot_of_a_series_is_inline_svg():
    record = fixture_record("thermal_slowdown.json").to_dict()
    charts = plots.device_charts(record)
    assert charts.count("<svg") == 4 and "polyline" in charts
    assert "not sampled" in plots.svg_chart([], [], "power", "W")


def test_fleet_charts_are_thinned_but_keep_a_one_second_dip():
    """A 10-minute run's SM clock, one sample a second, with a 1 s throttle to 600 MHz."""
    times = [float(t) for t in range(600)]
    clocks = [1900 if t != 377 else 600 for t in range(600)]
    device = {"series": {"t": times, "sm_clock_mhz": clocks}, "gemm_series": {}}
    charts = plots.chart_series(device, plots.FLEET_POINTS)
    clock = next(c for c in charts if c["title"] == "SM clock")
    assert len(clock["t"]) <= plots.FLEET_POINTS and min(clock["v"]) == 600
    assert clock["t"] == sorted(clock["t"]) and 377.0 in clock["t"]
    assert clock["t"][0] == 0.0 and clock["t"][-1] >= 590
    # Short series are kept whole, missing readings left out.
    assert plots.thin([0, 1, 2], [5, None, 7], 120) == ([0, 2], [5, 7])


# verify/CONTRACTS.md section 5, as data: a report a reader can rely on.
SECTION_2_KEYS = {
    "schema", "host", "started", "duration_s", "phases", "labrig_version", "mode", "framework",
    "versions", "gpus", "checks", "summary", "exit_code",
}  # fmt: skip
RUN_KEYS = {"minutes", "duration_s", "interrupted", "crashed", "dcgm", "devices"}
DEVICE_KEYS = {
    "gpu", "label", "uuid", "name", "pci_bus_id", "card", "series", "gemm_series", "gemm",
    "memory", "copies", "xid_lines",
}  # fmt: skip
GEMM_DTYPES = {"float16", "bfloat16", "float32"}
HOST_VERDICTS = {"burnin.run", "burnin.dcgm"}


def contract_problems(report: dict) -> list[str]:
    problems = []

    def want(condition: bool, what: str) -> None:
        if not condition:
            problems.append(what)

    want(set(report) >= SECTION_2_KEYS, f"section 2 keys missing: {SECTION_2_KEYS - set(report)}")
    want(report["schema"] == BURN_IN_SCHEMA, "schema")
    want(report["mode"] in ("gpu", "cpu-only"), "mode")
    want(set(report["phases"]) == {"load_s"}, "phases")
    checks = [CheckResult.from_dict(c) for c in report["checks"]]
    want(report["summary"] == summarise(checks), "summary is not the checks' summary")
    want(report["exit_code"] == (1 if any(c.blocking for c in checks) else 0), "exit code")
    burn_in = report["burn_in"]
    want(set(burn_in) == RUN_KEYS, f"burn_in keys: {set(burn_in) ^ RUN_KEYS}")
    want(burn_in["interrupted"] in (None, "SIGINT", "SIGTERM", "SIGHUP"), "interrupted")
    want(isinstance(burn_in["dcgm"].get("present"), bool), "dcgm.present")
    want(burn_in["dcgm"]["present"] or bool(burn_in["dcgm"].get("why")), "dcgm: why not")
    host_ids = [c.check_id for c in checks if c.gpu is None and c.check_id in HOST_VERDICTS]
    want(sorted(host_ids) == sorted(HOST_VERDICTS), f"host verdicts: {host_ids}")
    device_ids = set(verdicts.CHECK_IDS) - HOST_VERDICTS
    for device in burn_in["devices"]:
        label = device["label"]
        want(set(device) == DEVICE_KEYS, f"{label} keys: {set(device) ^ DEVICE_KEYS}")
        series = device["series"]
        want(set(series) <= set(SAMPLE_KEYS), f"{label}: unknown series {set(series)}")
        lengths = {len(v) for v in series.values()}
        want(len(lengths) <= 1 and (not series or "t" in series), f"{label}: ragged series")
        gemm_series = device["gemm_series"]
        want(len(gemm_series["t"]) == len(gemm_series["tflops"]), f"{label}: gemm_series")
        gemm = device["gemm"]
        ran, not_run = set(gemm.get("dtypes") or []), set(gemm.get("dtypes_not_run") or {})
        if not gemm.get("error"):
            want(ran | not_run == GEMM_DTYPES and not ran & not_run, f"{label}: dtypes {gemm}")
        for memory_pass in device["memory"].get("passes") or []:
            want(memory_pass["pattern"] in ("walking_ones", "address", "random"), "pattern")
        ids = {c.check_id for c in checks if c.gpu == device["gpu"]} - HOST_VERDICTS
        want(ids == device_ids, f"{label}: verdicts {ids ^ device_ids}")
        if device["gpu"] is None:
            want(device["card"] == {} and series == {}, f"{label}: a CPU has no card or series")
    return problems


def burn_in_fixture_reports() -> list[Path]:
    """The committed reports: the synthetic one, and a real GPU's (tests/gpu/device-run.sh)
    where one was recorded."""
    return sorted(FIXTURES.glob("*.burn-in.json"))


@pytest.mark.parametrize("path", burn_in_fixture_reports(), ids=lambda p: p.name)
def test_burn_in_fixture_reports_follow_the_contract(path):
    report = json.loads(path.read_text(encoding="utf-8"))
    assert contract_problems(report) == []
    if path.name.startswith("synthetic-"):
        assert report["synthetic"] is True
    else:
        assert path.name.startswith("real-") and "synthetic" not in report
        assert report["mode"] == "gpu" and report["burn_in"]["minutes"] == 2


def test_device_run_script_burn_in_part_rehearses_on_the_cpu(tmp_path):
    """What tests/gpu/device-run.sh runs on a lent GPU, here on the CPU, so that it works the
    first time there: the burn-in's JSON lands under $OUT and follows the contract."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "DEVICE_RUN_CPU_ONLY": "1",
        "DEVICE_RUN_ONLY": "burn-in",
        "DEVICE_RUN_BURN_IN_MINUTES": "0.05",
    }
    proc = subprocess.run(
        ["bash", "tests/gpu/device-run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    report = json.loads((out / "rehearsal-cpu.burn-in.json").read_text())
    assert contract_problems(report) == []
    assert report["burn_in"]["minutes"] == 0.05 and report["exit_code"] == 0
    assert (out / "rehearsal-cpu.burn-in.html").exists() and not (out / "report.json").exists()
    assert "burn-in exit code: 0" in (out / "device.txt").read_text()


def test_contract_check_can_fail():
    report = json.loads((FIXTURES / "synthetic-ws01.burn-in.json").read_text())
    device = report["burn_in"]["devices"][1]
    device["series"]["power_w"].pop()
    device["gemm"]["dtypes"] = ["float32"]  # bf16 and fp16 left out without a word
    report["exit_code"] = 0
    problems = contract_problems(report)
    assert "gpu1: ragged series" in problems and "exit code" in problems
    assert any(p.startswith("gpu1: dtypes") for p in problems)
