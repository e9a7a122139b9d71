"""Framework adapters: the only place that imports mxnet or torch.

Contract (owned by the workloads work; `verify.snapshot` and `verify.checks` rely on it):

    get_adapter(name: str) -> FrameworkAdapter      # "mxnet" (default, the reference) | "torch"

    adapter.probe() -> dict                         # never raises; used by the snapshot
        {"name": "mxnet", "version": "1.9.1" | None,
         "import_error": None | "OSError: libcudnn.so.8: cannot open shared object file",
         "features": {"CUDA": bool, "CUDNN": bool, "BLAS_MKL": bool, "BLAS_OPEN": bool,
                      "MKLDNN": bool, ...} | {},   # mx.runtime.Features(); torch: its build flags
         "num_gpus": int | None,                    # what the framework itself sees
         "cuda_version": str | None}                # CUDA the framework was built against
"""
