"""Framework build checks over the adapter's probe (a recorded probe, no framework imported)."""

from __future__ import annotations

from verify.checks import run_host_checks
from verify.result import Status


def by_id(snapshot, expectations=None, cpu_only=False):
    results = run_host_checks(snapshot, expectations or {}, cpu_only=cpu_only, only=["build"])
    return {item.check_id: item for item in results}


WANTED = {"CUDA": True, "CUDNN": True, "BLAS_OPEN": True, "MKLDNN": True}


def test_healthy_build(snapshot_of):
    results = by_id(snapshot_of("healthy-2x-rtx3090"), {"mxnet_features": WANTED})
    assert {item.status for item in results.values()} == {Status.PASSED}
    assert results["build.import"].reason == "mxnet 1.9.1 imports"
    assert results["build.num_gpus"].reason == "mxnet sees all 2 GPU(s)"


def test_features_not_as_asked(snapshot_of):
    wanted = {**WANTED, "BLAS_MKL": True, "BLAS_OPEN": False, "TENSORRT": True}
    item = by_id(snapshot_of("healthy-2x-rtx3090"), {"mxnet_features": wanted})["build.features"]
    assert item.status is Status.FAILED
    assert item.reason == (
        "BLAS_MKL is off, asked on; BLAS_OPEN is on, asked off; "
        "TENSORRT: not a feature of this build"
    )


def test_cpu_build_on_a_gpu_host_is_caught(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["framework"]["num_gpus"] = 0
    snapshot["framework"]["features"]["CUDA"] = False
    results = by_id(snapshot, {"mxnet_features": WANTED})
    assert results["build.num_gpus"].reason == "mxnet sees 0 GPU(s), NVML 2"
    assert results["build.features"].reason == "CUDA is off, asked on"


def test_import_failure(snapshot_of):
    results = by_id(snapshot_of("nvml-absent"), {"mxnet_features": WANTED})
    assert results["build.import"].status is Status.FAILED
    assert results["build.import"].reason == (
        "import mxnet failed: OSError: libcuda.so.1: cannot open shared object file"
    )
    assert results["build.features"].status is Status.FAILED


def test_cpu_only_still_checks_the_build(snapshot_of):
    results = by_id(snapshot_of("nvml-absent"), cpu_only=True)
    assert results["build.import"].status is Status.FAILED
    assert results["build.num_gpus"].status is Status.SKIPPED
    assert results["build.features"].reason == "no expected value given (mxnet_features)"


def test_mxnet_features_do_not_apply_to_torch(snapshot_of):
    snapshot = snapshot_of("healthy-2x-rtx3090")
    snapshot["framework"].update(name="torch", version="2.13.0")
    results = by_id(snapshot, {"mxnet_features": WANTED})
    assert results["build.features"].status is Status.SKIPPED
    assert results["build.import"].reason == "torch 2.13.0 imports"
