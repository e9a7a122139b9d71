"""The seed's NDArray example on the device, plus a matrix product and a host↔device round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING

from verify.registry import Judgement, check, fail, ok
from verify.workloads import spec

if TYPE_CHECKING:
    from verify.workloads.spec import WorkloadRun


def _seed_inputs():
    import numpy as np

    return tuple(np.array([value], dtype=np.float32) for value in spec.SMOKE_INPUTS)


def _scalar_or_array(values) -> float | list:
    flat = [float(v) for v in values.ravel()]
    return flat[0] if len(flat) == 1 else flat


@check("workload.smoke.elementwise", description="the seed's (a+b)*c on the device")
def check_elementwise(run: WorkloadRun) -> Judgement:
    adapter, device = run.adapter, run.device
    a, b, c = (adapter.to_device(value, device) for value in _seed_inputs())
    result = adapter.to_numpy(adapter.elementwise_sum_product(a, b, c))
    value = _scalar_or_array(result)
    measurements = {"result": value}
    if result.shape == (1,) and float(result[0]) == spec.SMOKE_EXPECTED_FORWARD:
        return ok(f"(a+b)*c = {value:g} on {device.label}", **measurements)
    return fail(
        f"(a+b)*c gave {value} on {device.label}, expected {spec.SMOKE_EXPECTED_FORWARD:g}",
        **measurements,
    )


@check("workload.smoke.gradient", description="the seed's symbolic forward and d/da")
def check_gradient(run: WorkloadRun) -> Judgement:
    forward, gradient = run.adapter.gradient_of_sum_product(*_seed_inputs(), run.device)
    measurements = {"forward": _scalar_or_array(forward), "gradient_a": _scalar_or_array(gradient)}
    problems = []
    if not (forward.shape == (1,) and float(forward[0]) == spec.SMOKE_EXPECTED_FORWARD):
        problems.append(
            f"forward gave {measurements['forward']}, expected {spec.SMOKE_EXPECTED_FORWARD:g}"
        )
    if not (gradient.shape == (1,) and float(gradient[0]) == spec.SMOKE_EXPECTED_GRADIENT_A):
        problems.append(
            f"d/da gave {measurements['gradient_a']}, expected {spec.SMOKE_EXPECTED_GRADIENT_A:g}"
        )
    if problems:
        return fail(f"{'; '.join(problems)} on {run.device.label}", **measurements)
    return ok(
        f"forward (a+b)*c = {spec.SMOKE_EXPECTED_FORWARD:g} and d/da = "
        f"{spec.SMOKE_EXPECTED_GRADIENT_A:g} on {run.device.label}",
        **measurements,
    )


@check("workload.smoke.matmul", description="1024x1024 float32 product vs float64")
def check_matmul(run: WorkloadRun) -> Judgement:
    import numpy as np

    adapter, device = run.adapter, run.device
    rng = np.random.RandomState(spec.MATMUL_SEED)
    shape = (spec.MATMUL_SIZE, spec.MATMUL_SIZE)
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    product = adapter.to_numpy(
        adapter.matmul(adapter.to_device(a, device), adapter.to_device(b, device))
    )
    reference = a.astype(np.float64) @ b.astype(np.float64)
    bound = spec.MATMUL_MAX_RELATIVE_ERROR
    size = spec.MATMUL_SIZE
    measurements = {"size": size, "max_relative_error": bound}
    if product.shape != reference.shape:
        return fail(
            f"{size}x{size} product has shape {product.shape} on {device.label}",
            **measurements,
        )
    # A NaN/Inf anywhere makes the norm non-finite, so `<=` below fails it as well.
    error = float(
        np.linalg.norm(product.astype(np.float64) - reference) / np.linalg.norm(reference)
    )
    measurements["relative_error"] = error
    text = f"{size}x{size} float32 product vs float64: relative error {error:.2e}"
    if error <= bound:
        return ok(f"{text} ≤ {bound:g} on {device.label}", **measurements)
    return fail(f"{text} > {bound:g} on {device.label}", **measurements)


@check("workload.smoke.roundtrip", description="16 MiB host→device→host, bit-exact")
def check_roundtrip(run: WorkloadRun) -> Judgement:
    import numpy as np

    adapter, device = run.adapter, run.device
    original = (
        np.random.RandomState(spec.ROUNDTRIP_SEED)
        .standard_normal(spec.ROUNDTRIP_ELEMENTS)
        .astype(np.float32)
    )
    back = adapter.to_numpy(adapter.to_device(original, device))
    measurements = {"bytes": int(original.nbytes)}
    text = f"{original.nbytes >> 20} MiB float32 host→{device.label}→host"
    if back.dtype != original.dtype or back.shape != original.shape:
        return fail(
            f"{text} came back as {back.dtype}{list(back.shape)}",
            **measurements,
        )
    # Bit patterns, not values: -0.0 == 0.0 and NaN != NaN would hide or invent differences.
    differing = np.flatnonzero(original.view(np.uint32) != back.view(np.uint32))
    measurements["differing_elements"] = int(differing.size)
    if differing.size == 0:
        return ok(f"{text}: bit-exact", **measurements)
    first = int(differing[0])
    return fail(
        f"{text}: {differing.size} elements differ, first at [{first}]: "
        f"{original[first]!r} came back as {back[first]!r}",
        **measurements,
    )
