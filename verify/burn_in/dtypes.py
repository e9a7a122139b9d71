"""Which GEMM dtypes a burn-in runs on a device, and why each other one does not: the card's own
mix (half precision on the tensor cores, fp16 and bf16, and fp32), never a silent omission.

Pure: the framework's answer about its matmul kernels and the card's compute capability in, the
dtypes to run and {dtype: why not} out.
"""

from __future__ import annotations

# In the order the worker runs them and the report lists them.
GEMM_DTYPES = ("float16", "bfloat16", "float32")

# bf16 tensor cores came with Ampere (compute capability 8.0). torch.cuda.is_bf16_supported()
# is not the question: from torch 2.3 it also says yes where bf16 is only emulated, and it asks
# about the current device, not the one a worker loads.
BF16_MIN_CAPABILITY = (8, 0)
# MXNet 1.9.1's dot: "dot only supports float32/float64 for CPU, and float16/float32/float64 for
# GPU" (src/operator/tensor/dot-inl.h); bfloat16 is no dtype of its NDArray API at all.
MXNET_DOT_WHY = {
    "bfloat16": "MXNet 1.9's dot has no bfloat16 kernel (float16/32/64 on the GPU only)",
    "float16": "MXNet 1.9's dot has no float16 kernel on the CPU (float32/float64 only)",
}


def gemm_dtypes(
    framework: str,
    usable: frozenset[str],
    *,
    on_gpu: bool,
    compute_capability: tuple[int, int] | None,
) -> tuple[list[str], dict[str, str]]:
    """(dtypes to run, {dtype: why it is not run}) for one device. `usable` is what the
    framework adapter says its matmul has kernels for there (`matmul_dtypes`)."""
    usable = set(usable)
    if framework == "torch" and (not on_gpu or _has_bf16(compute_capability)):
        # torch has bf16 matmul kernels on the CPU and on the tensor cores from sm_80.
        usable.add("bfloat16")
    run = [d for d in GEMM_DTYPES if d in usable]
    missing = {d: _why_not(d, framework, on_gpu, compute_capability) for d in GEMM_DTYPES}
    return run, {d: why for d, why in missing.items() if d not in usable}


def _has_bf16(capability: tuple[int, int] | None) -> bool:
    return capability is not None and tuple(capability) >= BF16_MIN_CAPABILITY


def _why_not(dtype: str, framework: str, on_gpu: bool, capability: tuple[int, int] | None) -> str:
    if framework == "mxnet" and dtype in MXNET_DOT_WHY:
        return MXNET_DOT_WHY[dtype]
    if dtype == "bfloat16" and on_gpu:
        if capability is None:
            return "compute capability unknown: bfloat16 needs 8.0 (Ampere) or newer"
        major, minor = capability
        return f"compute capability {major}.{minor}: bfloat16 tensor cores need 8.0 or newer"
    where = "GPU" if on_gpu else "CPU"
    return f"{framework}'s matmul has no {dtype} kernel on the {where}"
