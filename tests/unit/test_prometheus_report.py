"""`--prometheus-textfile`: the report as text exposition, written whole, checked by promtool."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from verify import cli
from verify.report import prometheus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "snapshots"

REPORT = {
    "schema": "labrig.verify/1",
    "host": "ws01",
    "started": "2026-11-27T10:00:00+00:00",
    "duration_s": 12.5,
    "labrig_version": "0.1.0",
    "mode": "gpu",
    "framework": {"name": "mxnet", "version": "1.9.1"},
    "versions": {"driver": "535.216.03", "cuda_driver": "12.2"},
    "gpus": [
        {"index": 0, "name": "NVIDIA GeForce RTX 3090", "uuid": "GPU-aaa"},
        {"index": 1, "name": "NVIDIA RTX A6000", "uuid": "GPU-bbb"},
    ],
    "checks": [
        {"check_id": "driver.nvml", "status": "passed", "reason": "ok", "gpu": None},
        {
            "check_id": "gpu.ecc",
            "status": "failed",
            "reason": 'ECC "double" bit\\error\nsecond line',
            "gpu": 1,
            "measurements": {"volatile_uncorrected": 3, "aggregate_uncorrected": 7},
        },
        {
            "check_id": "gpu.xid",
            "status": "passed",
            "reason": "none",
            "gpu": 0,
            "measurements": {"xids": []},
        },
        {
            "check_id": "gpu.mig",
            "status": "skipped",
            "reason": "n/a",
            "gpu": 0,
            "severity": "advisory",
        },
        {"check_id": "build.features", "status": "error", "reason": "crashed", "gpu": None},
        {
            "check_id": "workload.perf.gemm_fp16",
            "status": "passed",
            "reason": "fast",
            "gpu": 0,
            "measurements": {"tflops": 71.25, "size": 8192},
        },
        {
            "check_id": "workload.perf.h2d",
            "status": "passed",
            "reason": "fast",
            "gpu": 0,
            "measurements": {"gb_per_s": 24.5, "ok": True},
        },
    ],
    "exit_code": 1,
}

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(name, labels unescaped, value) of every sample; asserts each line is well formed."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) \w+ \S", line), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = {
            key: re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), raw)
            for key, raw in LABEL.findall(match["labels"] or "")
        }
        out.append((match["name"], labels, match["value"]))
    return out


def find(samples, name, **labels):
    return [s for s in samples if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]


def test_every_check_is_a_status_series_with_its_gpu_identity():
    samples = parse(prometheus.render(REPORT))
    statuses = {(s[1]["check"], s[1]["gpu"]): s[2] for s in find(samples, "labrig_check_status")}
    assert statuses == {
        ("driver.nvml", ""): "0",
        ("gpu.ecc", "1"): "1",
        ("gpu.xid", "0"): "0",
        ("gpu.mig", "0"): "3",
        ("build.features", ""): "2",
        ("workload.perf.gemm_fp16", "0"): "0",
        ("workload.perf.h2d", "0"): "0",
    }
    (ecc,) = find(samples, "labrig_check_status", check="gpu.ecc")
    assert ecc[1] == {
        "check": "gpu.ecc",
        "gpu": "1",
        "uuid": "GPU-bbb",
        "model": "NVIDIA RTX A6000",
        "severity": "required",
    }
    (mig,) = find(samples, "labrig_check_status", check="gpu.mig")
    assert mig[1]["severity"] == "advisory"


def test_reasons_only_for_failed_and_errored_checks_escaped_and_on_one_line():
    text = prometheus.render(REPORT)
    samples = parse(text)
    reasons = {s[1]["check"]: s[1]["reason"] for s in find(samples, "labrig_check_reason_info")}
    assert reasons == {
        "gpu.ecc": 'ECC "double" bit\\error second line',
        "build.features": "crashed",
    }
    assert 'reason="ECC \\"double\\" bit\\\\error second line"' in text


def test_label_escaping_follows_the_exposition_format():
    assert prometheus.escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_measurements_become_their_metrics_with_fixed_labels():
    samples = parse(prometheus.render(REPORT))
    assert find(samples, "labrig_gemm_tflops", gpu="0", precision="fp16", uuid="GPU-aaa")[0][2] == (
        "71.25"
    )
    assert find(samples, "labrig_copy_gb_per_s", direction="h2d")[0][2] == "24.5"
    assert find(samples, "labrig_gpu_ecc_volatile_uncorrected_errors", gpu="1")[0][2] == "3"
    assert find(samples, "labrig_gpu_ecc_aggregate_uncorrected_errors", gpu="1")[0][2] == "7"
    # A clean kernel log is a count of 0, so an alert sees the series rise.
    assert find(samples, "labrig_gpu_xid_events", gpu="0")[0][2] == "0"
    # Measurements without a metric (size) and booleans (ok) are left out.
    assert not [s for s in samples if s[2] in ("8192", "True")]


def test_run_metrics_and_build_info():
    samples = parse(prometheus.render(REPORT))
    value = {s[0]: s[2] for s in samples if not s[1]}
    assert value["labrig_verify_exit_code"] == "1"
    assert value["labrig_verify_duration_seconds"] == "12.5"
    assert float(value["labrig_verify_last_run_timestamp_seconds"]) == 1795773600.0
    counts = {s[1]["status"]: s[2] for s in find(samples, "labrig_verify_checks")}
    assert counts == {"passed": "4", "failed": "1", "error": "1", "skipped": "1"}
    (build,) = find(samples, "labrig_build_info")
    assert build[1] == {
        "labrig_version": "0.1.0",
        "driver": "535.216.03",
        "cuda": "12.2",
        "framework": "mxnet 1.9.1",
    }


def test_each_metric_has_one_help_and_type_before_its_samples():
    text = prometheus.render(REPORT)
    seen: list[str] = []
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            assert current not in seen, f"{current} declared twice"
            seen.append(current)
        elif line.startswith("# TYPE "):
            assert line == f"# TYPE {current} gauge"
        else:
            assert line.split("{")[0].split()[0] == current, line


def test_a_stand_in_report_of_a_host_that_could_not_run_still_renders():
    stand_in = {
        "host": "ws02",
        "checks": [],
        "gpus": [],
        "versions": {},
        "exit_code": 2,
        "started": "not a time",
        "duration_s": 0,
    }
    samples = parse(prometheus.render(stand_in))
    assert find(samples, "labrig_verify_exit_code")[0][2] == "2"
    assert not find(samples, "labrig_verify_last_run_timestamp_seconds")


def test_special_values():
    assert [prometheus.format_value(v) for v in (3, 2.5, float("nan"), float("inf"))] == [
        "3",
        "2.5",
        "NaN",
        "+Inf",
    ]


def test_write_replaces_the_file_whole_readable_by_others(tmp_path):
    target = tmp_path / "labrig_verify.prom"
    target.write_text("old\n")
    prometheus.write(REPORT, target)
    assert target.read_text() == prometheus.render(REPORT)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labrig_verify.prom"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "labrig_verify.prom"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        prometheus.write_atomically(b"not text", target)  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["labrig_verify.prom"]


@pytest.mark.parametrize("snapshot", ["xid-fallen-off-the-bus", "ecc-errors", "nvml-absent"])
def test_cli_writes_metrics_alone_that_promtool_accepts(tmp_path, snapshot, capsys, promtool):
    target = tmp_path / "out.prom"
    code = cli.main(
        [
            "--no-color",
            "--expectations-dir",
            str(tmp_path / "none"),
            "--snapshot",
            str(FIXTURES / f"synthetic-{snapshot}.json"),
            "--prometheus-textfile",
            str(target),
        ]
    )
    capsys.readouterr()
    assert code == 1
    text = target.read_text()
    assert "labrig_verify_exit_code 1" in text.splitlines()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_cli_refuses_an_unwritable_textfile_before_any_check(tmp_path, capsys):
    code = cli.main(
        [
            "--snapshot",
            str(FIXTURES / "synthetic-ecc-errors.json"),
            "--prometheus-textfile",
            str(tmp_path / "missing" / "out.prom"),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert "No such file or directory" in err
