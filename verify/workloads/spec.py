"""What the workload checks run and what they accept, defined once for every framework, and
what a check function is handed (`WorkloadRun`). The tunables (`mlp_min_accuracy`,
`mlp_samples`, `perf_floor_scale`) and their defaults live in verify/expectations.py.

The NDArray example and the MLP come from the seed (a Chinese deep-learning primer's MXNet
"Hello World"); its OCR lost lines, so they were restored from the book's published code
(chap7/gen_data.py, chap7/mxnet/simple_mlp.py of its companion repository).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from verify import expectations as expectations_module
from verify.cuda_devices import CudaTarget
from verify.frameworks import Device, FrameworkAdapter, MlpRecipe
from verify.pcie import Link

if TYPE_CHECKING:
    import numpy as np

# --- NDArray / tensor smoke test (the seed's imperative and symbolic example) ------------------
SMOKE_INPUTS = (1.0, 2.0, 3.0)  # a, b, c: one-element arrays, as in the seed
SMOKE_EXPECTED_FORWARD = (SMOKE_INPUTS[0] + SMOKE_INPUTS[1]) * SMOKE_INPUTS[2]  # 9, exact
SMOKE_EXPECTED_GRADIENT_A = SMOKE_INPUTS[2]  # d((a+b)*c)/da = c = 3

# A product large enough to run through the BLAS library's blocked kernels, small enough that the
# float64 reference on the host stays ~0.1 s.
MATMUL_SIZE = 1024
MATMUL_SEED = 7
# Frobenius-norm relative error against float64. float32 accumulation gives ~1e-7 here; TF32
# tensor cores (Ampere+, if a framework turns them on) ~4e-4; a corrupted or wrong product ~1.
MATMUL_MAX_RELATIVE_ERROR = 1e-3

ROUNDTRIP_ELEMENTS = 1 << 22  # 16 MiB of float32
ROUNDTRIP_SEED = 11


# --- The seed's two-layer MLP ---------------------------------------------------------------
# The seed draws `sample_density` uniform points in [0, 1]² (one np.random.random(2) per draw,
# after np.random.seed(123)) and drops those within ±0.1 of the boundary (vertically), so the
# default 50 draws leave 41 points; 1000 draws leave 809. `mlp_samples` sets the draw count.
DATA_SEED = 123
BOUNDARY_BAND = 0.1

HIDDEN_UNITS = 2
CLASSES = 2
EPOCHS = 1000
LEARNING_RATE = 0.1
MOMENTUM = 0.99

# The seed leaves the initial weights to MXNet's unseeded Uniform(0.01) initialiser. This net
# has two basins: the curved boundary (accuracy 1.0) and a near-linear one (~0.88 on 41 points,
# ~0.93 on 809) where most small random starts end. Weights from RandomState(6), uniform in
# [-1, 1] (biases 0), reach the curved boundary for every draw count tried (50 to 5000) and
# still do with the weights perturbed by 1e-3, so a healthy device reproduces it; both
# frameworks start from these same numbers.
INIT_SEED = 6
INIT_SCALE = 1.0

CENTRE_POINT = (0.5, 0.5)
CENTRE_EXPECTED_CLASS = 1
# Largest |p_gpu - p_cpu| over the class probabilities of every training point and the centre.
# Measured on the CPU: MXNet vs torch differ by ≤3e-6 and float32 vs float64 by ≤3e-6; a run
# that lands in the other basin differs by ~0.5. GPU kernels sum in another order: 1e-3 leaves
# a wide margin for that, while a wrong kernel moves the probabilities far more.
AGREEMENT_TOLERANCE = 1e-3


def cos_curve(x1: np.ndarray | float) -> np.ndarray | float:
    """The seed's class boundary: x2 = 0.25·sin(2π·x1 + π/2) + 0.5."""
    import numpy as np

    return 0.25 * np.sin(2 * x1 * np.pi + 0.5 * np.pi) + 0.5


@dataclass(frozen=True)
class MlpData:
    draws: int
    samples: np.ndarray  # (n, 2) float32
    labels: np.ndarray  # (n,) int64: 1 above the boundary, 0 below


def make_dataset(draws: int = expectations_module.DEFAULTS["mlp_samples"]) -> MlpData:
    """The seed's data, without touching NumPy's global random state."""
    import numpy as np

    draws = expectations_module.VALIDATORS["mlp_samples"](draws, "the sample count")
    # RandomState(seed).random_sample((n, 2)) yields the same stream, in the same order, as the
    # seed's np.random.seed(seed) followed by n calls of np.random.random(2).
    points = np.random.RandomState(DATA_SEED).random_sample((draws, 2))
    x1, x2 = points[:, 0], points[:, 1]
    bound = cos_curve(x1)
    near_boundary = (bound - BOUNDARY_BAND < x2) & (x2 <= bound + BOUNDARY_BAND)
    kept = points[~near_boundary]
    labels = (kept[:, 1] > cos_curve(kept[:, 0])).astype(np.int64)
    return MlpData(draws=draws, samples=kept.astype(np.float32), labels=labels)


def initial_weights() -> dict[str, np.ndarray]:
    import numpy as np

    rng = np.random.RandomState(INIT_SEED)
    fc1_weight = rng.uniform(-INIT_SCALE, INIT_SCALE, (HIDDEN_UNITS, 2))
    fc2_weight = rng.uniform(-INIT_SCALE, INIT_SCALE, (CLASSES, HIDDEN_UNITS))
    return {
        "fc1_weight": fc1_weight.astype(np.float32),
        "fc1_bias": np.zeros(HIDDEN_UNITS, dtype=np.float32),
        "fc2_weight": fc2_weight.astype(np.float32),
        "fc2_bias": np.zeros(CLASSES, dtype=np.float32),
    }


def mlp_recipe(data: MlpData) -> MlpRecipe:
    return MlpRecipe(
        samples=data.samples,
        labels=data.labels,
        epochs=EPOCHS,
        learning_rate=LEARNING_RATE,
        momentum=MOMENTUM,
        **initial_weights(),
    )


# --- Performance ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PerfSizes:
    gemm_size: int  # square matrices, nxn
    copy_bytes: int
    repeats: int
    # Each timed repeat queues enough products to last at least this long, so launch and
    # Python overhead stay negligible even for float16 on a big card.
    min_repeat_s: float


# 8192² products keep any lab GPU's SMs busy (~1.1 TFLOP each); 256 MiB copies reach the link's
# steady rate. 768 MiB of device memory in all.
GPU_PERF = PerfSizes(gemm_size=8192, copy_bytes=256 << 20, repeats=10, min_repeat_s=0.05)
# On the CPU the numbers are reported for the record only, so the sizes are kept small enough
# for the suite's time budget.
CPU_PERF = PerfSizes(gemm_size=256, copy_bytes=16 << 20, repeats=5, min_repeat_s=0.0)
PERF_WARMUP_CALLS = 2
PERF_MAX_CALLS_PER_REPEAT = 200


def gemm_tflops(size: int, seconds: float) -> float:
    return 2.0 * size**3 / seconds / 1e12


def calls_per_repeat(one_call_s: float, sizes: PerfSizes) -> int:
    if one_call_s <= 0 or sizes.min_repeat_s <= 0:
        return 1
    return max(1, min(PERF_MAX_CALLS_PER_REPEAT, math.ceil(sizes.min_repeat_s / one_call_s)))


# How often the link and clock reasons are read while the GEMM keeps the GPU busy.
LOAD_SAMPLE_INTERVAL_S = 0.05


# --- What a check function is handed ----------------------------------------------------------
@dataclass(frozen=True)
class GpuContext:
    """What the suite knows of one NVML GPU before its workloads run: which CUDA device it is,
    its and its host port's maximum link, and how to sample it under load."""

    target: CudaTarget
    name: str | None = None
    card: Link = field(default_factory=Link)
    host: Link = field(default_factory=Link)
    sampler: Callable[[], dict[str, Any]] | None = None


@dataclass
class WorkloadRun:
    """The adapter, the device of this subject, the expectations, and results shared between
    subjects (the CPU reference MLP, the samples taken under load)."""

    adapter: FrameworkAdapter
    device: Device
    gpu_name: str | None
    expectations: dict[str, Any]
    shared: dict[Any, Any]
    context: GpuContext | None = None

    @property
    def load_samples(self) -> list[dict[str, Any]] | None:
        """What was read while this GPU was under load; None when nothing could be."""
        if self.context is None or self.context.sampler is None:
            return None
        return self.shared.setdefault(("load-samples", self.context.target.nvml_index), [])

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """Read the GPU's link and clock reasons in the background while the block runs."""
        samples = self.load_samples
        if samples is None or self.device.gpu is None:
            yield
            return
        read = self.context.sampler
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    samples.append(read())
                except Exception as exc:  # a failed read is a fact for the check, not a crash
                    samples.append({"error": f"{type(exc).__name__}: {exc}"})
                stop.wait(LOAD_SAMPLE_INTERVAL_S)

        thread = threading.Thread(target=loop, name="labrig-load-sampler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def setting(self, key: str) -> Any:
        """A tunable, validated when the check asks for it: a bad value fails that check."""
        return expectations_module.setting(self.expectations, key)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]
