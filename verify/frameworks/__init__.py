"""Framework adapters: the only place that imports mxnet or torch.

Contract (`verify.snapshot`, `verify.checks` and `verify.workloads` rely on it):

    FRAMEWORKS = ("mxnet", "torch")
    get_adapter(name: str) -> FrameworkAdapter      # "mxnet" (default, the reference) | "torch";
                                                    # any other name raises ValueError

    adapter.probe() -> dict                         # never raises; used by the snapshot
        {"name": "mxnet", "version": "1.9.1" | None,
         "import_error": None | "OSError: libcudnn.so.8: cannot open shared object file",
         "features": {"CUDA": bool, "CUDNN": bool, "BLAS_MKL": bool, "BLAS_OPEN": bool,
                      "MKLDNN": bool, ...} | {},   # mx.runtime.Features(); torch: its build flags
         "num_gpus": int | None,                    # what the framework itself sees
         "cuda_version": str | None,                # CUDA the framework was built against
         "cuda_archs": list[int] | None,            # SM archs with kernels (torch); None: unknown
         "probe_errors": {key: "Type: message"}}    # only when a query failed after the import
    not_probed(name, why) -> dict                   # the same keys, for a probe that could not run

Importing the framework happens lazily, on the first call that needs it; an import failure is
data in `probe()` and an exception (the original one) from every other method.

The operations the workload checks use (`verify.workloads` holds all check logic; an adapter only
translates one operation into its framework's calls):

    device(gpu_index: int | None) -> Device         # None: the CPU; Device.label e.g. "gpu(0)"
    to_device(array, device) -> tensor              # copy of a NumPy array onto the device
    to_numpy(tensor) -> np.ndarray                  # copy back to the host
    elementwise_sum_product(a, b, c) -> tensor      # imperative (a + b) * c
    gradient_of_sum_product(a, b, c, device) -> (forward, d_forward/d_a)   # NumPy arrays
                                                    # MXNet: mx.sym + bind(args_grad);
                                                    # torch: autograd
    matmul(a, b) -> tensor
    matmul_dtypes(device) -> frozenset[str]         # dtypes matmul has kernels for on that device
    random_normal(shape, dtype, device, seed) -> tensor   # drawn on the device itself
    pinned_host_buffer(shape, dtype, device) -> host tensor   # page-locked when a GPU is used
    copy_to_device(host_tensor, device) -> tensor   # for the copy-rate measurement
    copy_to_host(tensor, host_tensor) -> None
    synchronize(device) -> None                     # wait until queued work on it has finished
    train_mlp(recipe: MlpRecipe, device) -> TrainedMlp
"""

from __future__ import annotations

from verify.frameworks.base import (
    Device,
    FrameworkAdapter,
    MlpRecipe,
    TrainedMlp,
    describe_error,
    not_probed,
)

__all__ = [
    "DEFAULT_FRAMEWORK",
    "FRAMEWORKS",
    "Device",
    "FrameworkAdapter",
    "MlpRecipe",
    "TrainedMlp",
    "describe_error",
    "get_adapter",
    "not_probed",
]

FRAMEWORKS = ("mxnet", "torch")
DEFAULT_FRAMEWORK = "mxnet"


def get_adapter(name: str) -> FrameworkAdapter:
    """A fresh adapter for `name`; the framework itself is imported on first use."""
    if name == "mxnet":
        from verify.frameworks.mxnet_adapter import MXNetAdapter

        return MXNetAdapter()
    if name == "torch":
        from verify.frameworks.torch_adapter import TorchAdapter

        return TorchAdapter()
    raise ValueError(f"unknown framework {name!r}: choose one of {', '.join(FRAMEWORKS)}")
