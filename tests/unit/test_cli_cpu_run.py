"""The real suite on this machine's CPU: real gatherer, real MXNet probe, real workload checks."""

from __future__ import annotations

import json

import pytest

from verify import cli
from verify.frameworks import FrameworkAdapter

pytestmark = pytest.mark.slow

CPU_WHEEL = "mxnet_features:\n  CUDA: false\n  BLAS_OPEN: true\n  MKLDNN: true\n"


def run(tmp_path, capsys, expectations, *argv):
    directory = tmp_path / "expectations.d"
    directory.mkdir(exist_ok=True)
    (directory / "50-framework.yml").write_text(expectations, encoding="utf-8")
    report = tmp_path / "report.json"
    code = cli.main(
        [
            "--no-color",
            "--cpu-only",
            "--expectations-dir",
            str(directory),
            "--json",
            str(report),
            *argv,
        ]
    )
    out = capsys.readouterr().out
    return code, json.loads(report.read_text(encoding="utf-8")), out


def test_cpu_only_quick_path_passes_for_real(tmp_path, capsys):
    code, report, out = run(tmp_path, capsys, CPU_WHEEL, "--skip", "workload.mlp", "workload.perf")
    assert code == 0, out
    checks = {(c["check_id"], c["gpu"]): c for c in report["checks"]}
    assert checks[("build.import", None)]["reason"] == "mxnet 1.9.1 imports"
    assert checks[("build.features", None)]["status"] == "passed"
    workload = [c for c in report["checks"] if c["check_id"].startswith("workload.")]
    smoke = [c for c in workload if c["check_id"].startswith("workload.smoke")]
    assert smoke and {c["status"] for c in smoke} == {"passed"}
    assert not [c for c in workload if c["check_id"].startswith(("workload.mlp", "workload.perf"))]
    assert all(c["framework"]["name"] == "mxnet" for c in workload)
    assert report["framework"] == {"name": "mxnet", "version": "1.9.1"}


def test_wrong_expected_build_fails_with_the_reason(tmp_path, capsys):
    code, report, out = run(
        tmp_path, capsys, "mxnet_features: {CUDA: true, MKLDNN: true}\n", "--skip", "workload"
    )
    assert code == 1
    assert report["summary"]["first_failure"] == {
        "check_id": "build.features",
        "gpu": None,
        "reason": "CUDA is off, asked on",
    }
    assert "FAIL   build.features" in out


def test_the_framework_is_probed_once_per_run(tmp_path, capsys, monkeypatch):
    """The snapshot's probe is the one the workloads use: the framework is not asked twice."""
    probed = []
    original = FrameworkAdapter.probe

    def counting(self):
        probed.append(self.name)
        return original(self)

    monkeypatch.setattr(FrameworkAdapter, "probe", counting)
    code, report, out = run(
        tmp_path, capsys, CPU_WHEEL, "--only", "build.import", "workload.smoke.elementwise"
    )
    assert code == 0, out
    assert [c["status"] for c in report["checks"]] == ["passed", "passed"]
    assert probed == ["mxnet"]
