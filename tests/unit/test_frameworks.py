"""The framework adapters, run for real on the CPU builds of MXNet and PyTorch."""

from __future__ import annotations

import importlib.metadata
import sys

import numpy as np
import pytest

from verify import frameworks
from verify.frameworks import describe_error, get_adapter
from verify.workloads import spec

FRAMEWORK_MODULES = {"mxnet": "mxnet", "torch": "torch"}


@pytest.fixture(params=["mxnet", "torch"])
def adapter(request):
    return get_adapter(request.param)


def test_unknown_framework_is_a_usage_error():
    with pytest.raises(ValueError, match=r"unknown framework 'caffe'.*mxnet, torch"):
        get_adapter("caffe")


def test_probe_reports_the_cpu_build(adapter):
    info = adapter.probe()
    module = sys.modules[FRAMEWORK_MODULES[adapter.name]]
    assert info["name"] == adapter.name
    assert info["import_error"] is None
    assert info["version"] == module.__version__
    assert info["num_gpus"] == 0
    assert info["features"]["CUDA"] is False
    assert "probe_errors" not in info
    if adapter.name == "torch":
        assert info["cuda_version"] is None
        assert info["cuda_archs"] == []


def test_probe_turns_an_import_failure_into_data(monkeypatch, adapter):
    # None in sys.modules makes `import name` fail, as a missing or broken install would.
    module = FRAMEWORK_MODULES[adapter.name]
    monkeypatch.setitem(sys.modules, module, None)
    info = get_adapter(adapter.name).probe()
    assert (
        info["import_error"]
        == f"ModuleNotFoundError: import of {module} halted; None in sys.modules"
    )
    assert info["version"] is None
    assert info["features"] == {}
    assert info["num_gpus"] is None


def test_mxnet_cuda_version_comes_from_the_wheel_name(monkeypatch):
    monkeypatch.setattr(
        importlib.metadata, "packages_distributions", lambda: {"mxnet": ["mxnet-cu112"]}
    )
    assert get_adapter("mxnet")._cuda_version() == "11.2"
    monkeypatch.setattr(importlib.metadata, "packages_distributions", lambda: {"mxnet": ["mxnet"]})
    assert get_adapter("mxnet")._cuda_version() is None


def test_device_labels_name_the_framework_device():
    mxnet, torch = get_adapter("mxnet"), get_adapter("torch")
    assert (mxnet.device(None).label, mxnet.device(1).label) == ("cpu(0)", "gpu(1)")
    assert (torch.device(None).label, torch.device(1).label) == ("cpu", "cuda:1")
    assert mxnet.device(1).gpu == 1 and torch.device(None).gpu is None


def test_describe_error_keeps_the_cause_of_an_mxnet_error():
    mxnet = get_adapter("mxnet")
    mx = mxnet.module()
    # The CPU wheel has no CUDA: allocating on gpu(0) fails with a C++ traceback.
    with pytest.raises(mx.base.MXNetError) as caught:
        mx.nd.array([1.0], ctx=mx.gpu(0))
    line = describe_error(caught.value)
    assert "\n" not in line
    assert line == "MXNetError: Compile with USE_CUDA=1 to enable GPU usage"


def test_describe_error_of_a_plain_exception():
    assert describe_error(OSError("libcudnn.so.8: cannot open")) == (
        "OSError: libcudnn.so.8: cannot open"
    )
    assert describe_error(RuntimeError()) == "RuntimeError"
    # torch's CUDA errors: the cause first, then hints.
    cuda = RuntimeError(
        "CUDA error: an illegal memory access was encountered\n"
        "CUDA kernel errors might be asynchronously reported at some other API call.\n"
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1"
    )
    assert (
        describe_error(cuda) == "RuntimeError: CUDA error: an illegal memory access was encountered"
    )


def test_seed_example_and_gradient(adapter):
    device = adapter.device(None)
    a, b, c = (np.array([v], dtype=np.float32) for v in (1.0, 2.0, 3.0))
    on_device = [adapter.to_device(x, device) for x in (a, b, c)]
    assert adapter.to_numpy(adapter.elementwise_sum_product(*on_device)).tolist() == [9.0]
    forward, gradient = adapter.gradient_of_sum_product(a, b, c, device)
    assert forward.tolist() == [9.0]
    assert gradient.tolist() == [3.0]


def test_to_device_copies_rather_than_aliases(adapter):
    device = adapter.device(None)
    host = np.arange(8, dtype=np.float32)
    tensor = adapter.to_device(host, device)
    host[:] = -1
    assert adapter.to_numpy(tensor).tolist() == list(range(8))


def test_copy_helpers_move_the_data(adapter):
    device = adapter.device(None)
    host = adapter.pinned_host_buffer((16,), "float32", device)
    on_device = adapter.copy_to_device(host, device)
    target = adapter.pinned_host_buffer((16,), "float32", device)
    adapter.copy_to_host(adapter.elementwise_sum_product(on_device, on_device, on_device), target)
    adapter.synchronize(device)
    assert adapter.to_numpy(target).tolist() == [2.0] * 16


@pytest.mark.slow
def test_both_frameworks_train_the_same_mlp():
    """Same data, weights and optimiser: MXNet and torch must follow the same trajectory."""
    data = spec.make_dataset()
    recipe = spec.mlp_recipe(data)
    runs = {}
    for name in frameworks.FRAMEWORKS:
        adapter = get_adapter(name)
        runs[name] = adapter.train_mlp(recipe, adapter.device(None))
    mxnet, torch = runs["mxnet"], runs["torch"]
    assert len(mxnet.epoch_losses) == len(torch.epoch_losses) == spec.EPOCHS
    np.testing.assert_allclose(mxnet.epoch_losses, torch.epoch_losses, rtol=1e-3, atol=1e-5)
    assert mxnet.epoch_accuracies[-1] == torch.epoch_accuracies[-1] == 1.0
    points = np.vstack([data.samples, [spec.CENTRE_POINT]]).astype(np.float32)
    difference = np.abs(mxnet.predict(points) - torch.predict(points)).max()
    assert difference <= spec.AGREEMENT_TOLERANCE / 10
