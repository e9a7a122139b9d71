"""Reading a GPU's PCIe link and clock event reasons while a workload keeps it busy.

At idle NVIDIA GPUs drop the link to Gen1 and may flag a transient slowdown; the link a card
really trains to, and a slowdown that matters, show only under load. The workloads call the
sampler from a background thread while the GEMM runs (`WorkloadRun.sampling`); this module is
the NVML I/O behind it, found by PCI bus id so it reads the same card the framework computes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.Lock()
_INITIALISED: list[Any] = []


def _nvml(pynvml: Any = None) -> Any:
    """pynvml, initialised once for the process (the snapshot shut its own session down)."""
    with _LOCK:
        if not _INITIALISED:
            if pynvml is None:
                import pynvml
            pynvml.nvmlInit()
            _INITIALISED.append(pynvml)
        return _INITIALISED[0]


def for_bus(bus_id: str, pynvml: Any = None) -> Callable[[], dict[str, Any]]:
    """A sampler for the GPU at `bus_id`: each call returns {gen, width, reasons, util}."""

    def sample() -> dict[str, Any]:
        nvml = _nvml(pynvml)
        handle = nvml.nvmlDeviceGetHandleByPciBusId(bus_id)
        reasons_of = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        reasons_of = reasons_of or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return {
            "gen": int(nvml.nvmlDeviceGetCurrPcieLinkGeneration(handle)),
            "width": int(nvml.nvmlDeviceGetCurrPcieLinkWidth(handle)),
            "reasons": int(reasons_of(handle)),
            "util": int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
        }

    return sample
