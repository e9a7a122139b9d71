"""The workload checks, run for real through MXNet and PyTorch on the CPU (`--cpu-only` mode)."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest

from verify import frameworks
from verify.frameworks.mxnet_adapter import MXNetAdapter
from verify.frameworks.torch_adapter import TorchAdapter
from verify.result import CheckResult, Status
from verify.selection import selected
from verify.workloads import CHECK_IDS, perf, spec
from verify.workloads.runner import run_workloads
from verify.workloads.spec import WorkloadRun

ADAPTER_CLASSES = {"mxnet": MXNetAdapter, "torch": TorchAdapter}
SMOKE_AND_MLP = CHECK_IDS[:5]
PERF = CHECK_IDS[5:]
UNDER_LOAD = ("workload.perf.pcie_link", "workload.perf.throttle")


def run_cpu(framework: str, **overrides) -> list:
    arguments = {
        "framework": framework,
        "gpu_indices": [],
        "cpu_only": True,
        "expectations": {},
        "only": None,
        "skip": set(),
    }
    arguments.update(overrides)
    return run_workloads(**arguments)


def by_id(results: list) -> dict:
    return {result.check_id: result for result in results}


@pytest.fixture(scope="module", params=["mxnet", "torch"])
def cpu_suite(request):
    """The whole workload suite on the CPU, once per framework (it takes seconds)."""
    streamed: list = []
    results = run_cpu(request.param, on_result=streamed.append)
    return request.param, results, streamed


# --- the whole suite on the CPU -----------------------------------------------------------------
@pytest.mark.slow
def test_every_check_runs_once_in_order_and_streams(cpu_suite):
    _, results, streamed = cpu_suite
    assert [r.check_id for r in results] == list(CHECK_IDS)
    assert streamed == results
    assert all(r.gpu is None for r in results)
    assert all("\n" not in r.reason for r in results)
    # What the JSON report writes, and reads back.
    restored = [
        CheckResult.from_dict(d) for d in json.loads(json.dumps([r.to_dict() for r in results]))
    ]
    assert restored == results


@pytest.mark.slow
def test_smoke_and_mlp_pass_on_the_cpu(cpu_suite):
    _, results, _ = cpu_suite
    for result in by_id(results).values():
        if result.check_id in SMOKE_AND_MLP:
            assert result.status is Status.PASSED, (result.check_id, result.reason)


@pytest.mark.slow
def test_results_name_the_framework_and_its_version(cpu_suite):
    framework, results, _ = cpu_suite
    module = sys.modules[framework]
    device = "cpu(0)" if framework == "mxnet" else "cpu"
    for result in results:
        assert result.framework == {
            "name": framework,
            "version": module.__version__,
            "device": device,
        }


@pytest.mark.slow
def test_mlp_reports_the_seed_run(cpu_suite):
    _, results, _ = cpu_suite
    mlp = by_id(results)["workload.mlp"]
    m = mlp.measurements
    assert m["samples"] == 41 and m["draws"] == 50 and m["epochs"] == 1000
    assert m["accuracy"] >= 0.97
    assert m["final_loss"] < m["initial_loss"]
    assert m["p_class1_at_centre"] > 0.5
    assert m["train_time_s"] > 0
    assert "cpu_gpu_max_abs_diff" not in m
    assert "agreement not applicable" in mlp.reason


@pytest.mark.slow
def test_perf_reports_numbers_but_has_no_cpu_floor(cpu_suite):
    framework, results, _ = cpu_suite
    checks = by_id(results)
    for check_id in PERF:
        result = checks[check_id]
        assert result.status is Status.SKIPPED, (check_id, result.reason)
        if framework == "mxnet" and check_id == "workload.perf.gemm_fp16":
            # MXNet 1.9's dot has no float16 CPU kernel: nothing was measured, and it says so.
            assert result.reason == "mxnet has no float16 matrix product on cpu(0)"
            continue
        if check_id in UNDER_LOAD:
            assert result.reason == "runs on the CPU: no GPU link or clocks to sample"
            continue
        assert "no floor for the CPU" in result.reason
        key = "tflops" if "gemm" in check_id else "gb_per_s"
        assert result.measurements[key] > 0
        assert result.measurements["repeats"] == spec.CPU_PERF.repeats


@pytest.mark.slow
def test_cpu_time_budget(cpu_suite):
    """Everything but the MLP is meant to take ~3 s on the 2-core CI machine; allow for load."""
    _, results, _ = cpu_suite
    quick = sum(r.duration_s for r in results if r.check_id != "workload.mlp")
    assert quick < 15, quick


# --- deliberately broken cases ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("framework", ["mxnet", "torch"])
def test_missed_accuracy_fails_naming_accuracy(monkeypatch, framework):
    cls = ADAPTER_CLASSES[framework]
    original = cls.train_mlp

    def one_point_wrong(self, recipe, device):
        trained = original(self, recipe, device)

        def predict(points):
            probabilities = trained.predict(points)
            probabilities[0] = probabilities[0][::-1].copy()
            return probabilities

        return dataclasses.replace(trained, predict=predict)

    monkeypatch.setattr(cls, "train_mlp", one_point_wrong)
    (result,) = run_cpu(framework, only={"workload.mlp"}, expectations={"mlp_min_accuracy": 1})
    assert result.status is Status.FAILED
    assert "training accuracy 0.976 < 1 required" in result.reason
    assert result.measurements["min_accuracy"] == 1


@pytest.mark.slow
def test_larger_sample_count_is_a_stronger_check_that_passes():
    (result,) = run_cpu("mxnet", only={"workload.mlp"}, expectations={"mlp_samples": 1000})
    assert result.status is Status.PASSED, result.reason
    assert (result.measurements["draws"], result.measurements["samples"]) == (1000, 809)
    assert result.measurements["accuracy"] >= 0.97


@pytest.mark.parametrize("framework", ["mxnet", "torch"])
def test_wrong_sum_fails_elementwise(monkeypatch, framework):
    cls = ADAPTER_CLASSES[framework]
    monkeypatch.setattr(cls, "elementwise_sum_product", lambda self, a, b, c: (a + b + b) * c)
    (result,) = run_cpu(framework, only={"workload.smoke.elementwise"})
    assert result.status is Status.FAILED
    assert result.reason.startswith("(a+b)*c gave 15.0 on ")
    assert result.reason.endswith("expected 9")


@pytest.mark.parametrize("framework", ["mxnet", "torch"])
def test_wrong_gradient_fails(monkeypatch, framework):
    cls = ADAPTER_CLASSES[framework]
    original = cls.gradient_of_sum_product

    def gradient_is_the_output(self, a, b, c, device):
        forward, _ = original(self, a, b, c, device)
        return forward, forward

    monkeypatch.setattr(cls, "gradient_of_sum_product", gradient_is_the_output)
    (result,) = run_cpu(framework, only={"workload.smoke.gradient"})
    assert result.status is Status.FAILED
    assert result.reason.startswith("d/da gave 9.0, expected 3 on ")
    assert result.measurements == {"forward": 9.0, "gradient_a": 9.0}


def test_wrong_matmul_fails_by_relative_error(monkeypatch):
    original = MXNetAdapter.matmul
    monkeypatch.setattr(MXNetAdapter, "matmul", lambda self, a, b: original(self, a, b) * 1.01)
    (result,) = run_cpu("mxnet", only={"workload.smoke.matmul"})
    assert result.status is Status.FAILED
    assert result.measurements["relative_error"] == pytest.approx(0.01, rel=1e-3)
    assert "relative error 1.00e-02 > 0.001" in result.reason


def test_corrupted_copy_fails_roundtrip(monkeypatch):
    original = TorchAdapter.to_numpy

    def flip_one_bit(self, tensor):
        array = original(self, tensor)
        array.view(np.uint32)[12345] ^= 1
        return array

    monkeypatch.setattr(TorchAdapter, "to_numpy", flip_one_bit)
    (result,) = run_cpu("torch", only={"workload.smoke.roundtrip"})
    assert result.status is Status.FAILED
    assert "1 elements differ, first at [12345]" in result.reason
    assert result.measurements["differing_elements"] == 1


@pytest.mark.parametrize("framework", ["mxnet", "torch"])
def test_framework_that_cannot_be_imported_fails_every_check(monkeypatch, framework):
    monkeypatch.setitem(sys.modules, framework, None)
    results = run_cpu(framework)
    assert [r.check_id for r in results] == list(CHECK_IDS)
    for result in results:
        assert result.status is Status.FAILED
        assert result.reason == (
            f"{framework} cannot be imported: "
            f"ModuleNotFoundError: import of {framework} halted; None in sys.modules"
        )
        assert result.framework == {"name": framework, "version": None, "device": "cpu"}


def test_a_crashing_check_is_an_error_and_the_others_still_run(monkeypatch):
    def explode(self, a, b, c):
        raise RuntimeError("kernel launch failed")

    monkeypatch.setattr(MXNetAdapter, "elementwise_sum_product", explode)
    results = run_cpu("mxnet", only={"workload.smoke.elementwise", "workload.smoke.gradient"})
    assert [(r.check_id, r.status) for r in results] == [
        ("workload.smoke.elementwise", Status.ERROR),
        ("workload.smoke.gradient", Status.PASSED),
    ]
    assert results[0].reason == "RuntimeError: kernel launch failed"


def test_bad_expectation_errors_naming_the_key():
    (result,) = run_cpu("mxnet", only={"workload.mlp"}, expectations={"mlp_samples": "many"})
    assert result.status is Status.ERROR
    assert (
        result.reason
        == "ValueError: expectation mlp_samples must be a positive integer, got 'many'"
    )


# --- GPU mode ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("framework", "cause"),
    [
        ("mxnet", "MXNetError: Compile with USE_CUDA=1 to enable GPU usage"),
        ("torch", "AssertionError: Torch not compiled with CUDA enabled"),
    ],
)
def test_gpu_mode_on_a_cpu_build_never_passes(framework, cause):
    (result,) = run_workloads(
        framework=framework,
        gpu_indices=[0],
        cpu_only=False,
        expectations={},
        only={"workload.smoke.elementwise"},
        skip=set(),
    )
    assert result.status is Status.ERROR
    assert result.gpu == 0
    assert result.reason == cause


def test_gpu_mode_without_gpus_fails_every_check():
    results = run_workloads(
        framework="torch", gpu_indices=[], cpu_only=False, expectations={}, only=None, skip=set()
    )
    assert len(results) == len(CHECK_IDS)
    assert {r.status for r in results} == {Status.FAILED}
    assert results[0].reason.startswith("no GPU to run the workload checks on: none was found")


class CpuStandingInForGpu(MXNetAdapter):
    """MXNet on the CPU dressed as gpu(i): exercises the GPU-mode logic (CPU reference run,
    agreement, floors) with real computation on a machine without a GPU."""

    def device(self, gpu_index):
        if gpu_index is None:
            return super().device(None)
        mx = self.module()
        return frameworks.Device(gpu=gpu_index, label=f"gpu({gpu_index})", native=mx.cpu(0))


@pytest.fixture
def stand_in_gpu(monkeypatch):
    monkeypatch.setattr(frameworks, "get_adapter", lambda name: CpuStandingInForGpu())
    # The GPU sizes would take minutes on this CPU.
    monkeypatch.setattr(spec, "GPU_PERF", spec.CPU_PERF)


def run_stand_in(**overrides):
    arguments = {
        "framework": "mxnet",
        "gpu_indices": [0, 1],
        "cpu_only": False,
        "expectations": {},
        "only": None,
        "skip": set(),
    }
    arguments.update(overrides)
    return run_workloads(**arguments)


@pytest.mark.slow
def test_gpu_mode_compares_the_mlp_with_one_cpu_run(stand_in_gpu, monkeypatch):
    trained_on = []
    original = CpuStandingInForGpu.train_mlp

    def counting(self, recipe, device):
        trained_on.append(device.label)
        return original(self, recipe, device)

    monkeypatch.setattr(CpuStandingInForGpu, "train_mlp", counting)
    results = run_stand_in(only={"workload.mlp"})
    assert [(r.gpu, r.status) for r in results] == [(0, Status.PASSED), (1, Status.PASSED)]
    # One CPU reference, shared by both GPUs.
    assert trained_on == ["gpu(0)", "cpu(0)", "gpu(1)"]
    for result in results:
        assert result.measurements["cpu_gpu_max_abs_diff"] == 0.0
        assert result.measurements["cpu_accuracy"] == result.measurements["accuracy"]
        assert "agrees with the CPU run within 0.0e+00 (≤ 0.001)" in result.reason


@pytest.mark.slow
def test_gpu_mode_fails_an_mlp_that_disagrees_with_the_cpu(stand_in_gpu, monkeypatch):
    original = CpuStandingInForGpu.train_mlp

    def drifting_gpu(self, recipe, device):
        trained = original(self, recipe, device)
        if device.gpu is None:
            return trained
        # Right class everywhere, probabilities 0.01 off: only the agreement can catch it.
        return dataclasses.replace(
            trained, predict=lambda points: trained.predict(points) + np.array([-0.01, 0.01])
        )

    monkeypatch.setattr(CpuStandingInForGpu, "train_mlp", drifting_gpu)
    results = run_stand_in(gpu_indices=[0], only={"workload.mlp"})
    (result,) = results
    assert result.status is Status.FAILED
    assert result.reason.endswith("predictions differ from the CPU run by 1.00e-02 > 0.001")
    assert result.measurements["cpu_gpu_max_abs_diff"] == pytest.approx(0.01)


def test_gpu_perf_uses_the_floor_of_the_model(stand_in_gpu):
    results = run_stand_in(
        only={"workload.perf.gemm_fp32", "workload.perf.h2d"},
        gpu_names={0: "NVIDIA H100 80GB HBM3", 1: "NVIDIA Quantum Abacus"},
    )
    checks = {(r.check_id, r.gpu): r for r in results}
    # A 2-core CPU is nowhere near an H100's floor.
    gemm0 = checks[("workload.perf.gemm_fp32", 0)]
    assert gemm0.status is Status.FAILED
    assert gemm0.reason.endswith("< floor 33 for NVIDIA H100 80GB HBM3")
    assert gemm0.measurements["floor"] == 33
    assert checks[("workload.perf.h2d", 0)].measurements["pinned"] is True
    gemm1 = checks[("workload.perf.gemm_fp32", 1)]
    assert gemm1.status is Status.SKIPPED
    assert "no floor for 'NVIDIA Quantum Abacus'" in gemm1.reason
    assert gemm1.measurements["tflops"] > 0


def test_gpu_perf_without_a_model_name_is_skipped_with_numbers(stand_in_gpu):
    (result,) = run_stand_in(gpu_indices=[0], only={"workload.perf.d2h"})
    assert result.status is Status.SKIPPED
    assert "GPU model unknown" in result.reason
    assert result.measurements["gb_per_s"] > 0


# --- pure parts ---------------------------------------------------------------------------------
def seed_data(draws: int):
    """The seed's own loop (chap7/gen_data.py), on the global RNG as it does it."""

    def cos_curve(x):
        return 0.25 * np.sin(2 * x * np.pi + 0.5 * np.pi) + 0.5

    np.random.seed(123)
    samples, labels = [], []
    for _ in range(draws):
        x1, x2 = np.random.random(2)
        bound = cos_curve(x1)
        if bound - 0.1 < x2 <= bound + 0.1:
            continue
        samples.append((x1, x2))
        labels.append(1 if x2 > bound else 0)
    return np.array(samples), np.array(labels)


@pytest.mark.parametrize(("draws", "points"), [(50, 41), (1000, 809)])
def test_dataset_is_the_seeds(draws, points):
    state = np.random.get_state()
    data = spec.make_dataset(draws)
    after = np.random.get_state()
    assert all(np.array_equal(x, y) for x, y in zip(state[1:], after[1:], strict=True))
    samples, labels = seed_data(draws)
    assert len(data.labels) == points
    np.testing.assert_array_equal(data.samples, samples.astype(np.float32))
    np.testing.assert_array_equal(data.labels, labels)


@pytest.mark.parametrize("draws", [0, -3, 2.5, True])
def test_dataset_rejects_a_bad_draw_count(draws):
    with pytest.raises(ValueError, match="positive integer"):
        spec.make_dataset(draws)


def test_initial_weights_are_fixed():
    first, second = spec.initial_weights(), spec.initial_weights()
    for name in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"):
        np.testing.assert_array_equal(first[name], second[name])
        assert first[name].dtype == np.float32
    assert first["fc1_weight"].shape == (spec.HIDDEN_UNITS, 2)
    assert first["fc2_weight"].shape == (spec.CLASSES, spec.HIDDEN_UNITS)


@pytest.mark.parametrize(
    ("check_id", "only", "skip", "expected"),
    [
        ("workload.smoke.gradient", None, set(), True),
        ("workload.smoke.gradient", {"workload.smoke"}, set(), True),
        ("workload.smoke.gradient", {"workload.smok"}, set(), False),
        ("workload.smoke.gradient", {"workload"}, {"workload.smoke.gradient"}, False),
        ("workload.perf.gemm_fp16", {"*.gemm_*"}, set(), True),
        ("workload.perf.h2d", {"*.gemm_*"}, set(), False),
        ("workload.mlp", None, {"workload.perf"}, True),
        ("workload.mlp", {"driver"}, set(), False),
    ],
)
def test_selection(check_id, only, skip, expected):
    assert selected(check_id, only, skip) is expected


def test_nothing_selected_imports_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert run_cpu("torch", only={"driver.nouveau"}) == []


def test_unknown_framework_is_a_usage_error():
    with pytest.raises(ValueError, match="unknown framework"):
        run_cpu("caffe")


def test_floor_table_is_complete():
    floors = perf.load_floors()
    assert "NVIDIA H100 80GB HBM3" in floors
    assert len(floors) >= 10
    for name, entry in floors.items():
        assert set(entry) == set(perf.FLOOR_KEYS), name
        assert all(value > 0 for value in entry.values()), name
        assert entry["gemm_fp16_tflops"] > entry["gemm_fp32_tflops"], name


def judge_on(gpu_name, value, expectations=None):
    run = WorkloadRun(
        adapter=None,
        device=frameworks.Device(gpu=0, label="cuda:0", native=None),
        gpu_name=gpu_name,
        expectations=expectations or {},
        shared={},
    )
    return perf.judge(run, "h2d_gb_per_s", value, "summary", {})


def test_floor_judgement():
    h100 = "NVIDIA H100 80GB HBM3"
    assert judge_on(h100, 50.0).status is Status.PASSED
    assert judge_on(h100, 20.0).status is Status.FAILED
    scaled = judge_on(h100, 20.0, {"perf_floor_scale": 0.5})
    assert scaled.status is Status.PASSED
    assert scaled.measurements["floor"] == 15.5
    assert judge_on("NVIDIA Unknown", 50.0).status is Status.SKIPPED
    with pytest.raises(ValueError, match="perf_floor_scale must be a positive number"):
        judge_on(h100, 50.0, {"perf_floor_scale": 0})


def test_calls_per_repeat_fills_the_minimum_repeat_time():
    assert spec.calls_per_repeat(0.001, spec.GPU_PERF) == 50
    assert spec.calls_per_repeat(1.0, spec.GPU_PERF) == 1
    assert spec.calls_per_repeat(1e-9, spec.GPU_PERF) == spec.PERF_MAX_CALLS_PER_REPEAT
    assert spec.calls_per_repeat(0.001, spec.CPU_PERF) == 1
    assert spec.gemm_tflops(1000, 0.002) == pytest.approx(1.0)
