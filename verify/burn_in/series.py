"""What a burn-in records for one device, and its JSON form (columns: one list per quantity, so
a 10-minute run of 8 GPUs stays a report a browser and a diff can read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Sampled quantities, in the order the JSON and the plots list them.
SAMPLE_KEYS = (
    "t",
    "temperature_c",
    "power_w",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "reasons",
    "pcie_gen",
    "pcie_width",
    "util",
    "ecc_uncorrected",
    "remap_pending",
    "remap_failure",
)


@dataclass
class DeviceRecord:
    """One device's run: who it is, its card's limits, the NVML samples (one dict a second), the
    GEMM rate over time and what each workload found."""

    gpu: int | None
    label: str
    uuid: str | None = None
    name: str | None = None
    pci_bus_id: str | None = None
    # sm_clock_max_mhz, slowdown_temp_c, power_limit_w, pcie_gen_max, pcie_width_max
    card: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    gemm_series: dict[str, list[float]] = field(default_factory=lambda: {"t": [], "tflops": []})
    gemm: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    copies: dict[str, Any] = field(default_factory=dict)
    # New NVRM Xid lines of this GPU since the run started; None when the log was unreadable.
    xid_lines: list[str] | None = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "label": self.label,
            "uuid": self.uuid,
            "name": self.name,
            "pci_bus_id": self.pci_bus_id,
            "card": self.card,
            "series": columns(self.samples),
            "gemm_series": self.gemm_series,
            "gemm": self.gemm,
            "memory": self.memory,
            "copies": self.copies,
            "xid_lines": self.xid_lines,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceRecord:
        return cls(
            gpu=data.get("gpu"),
            label=data.get("label") or "",
            uuid=data.get("uuid"),
            name=data.get("name"),
            pci_bus_id=data.get("pci_bus_id"),
            card=dict(data.get("card") or {}),
            samples=rows(data.get("series") or {}),
            gemm_series=dict(data.get("gemm_series") or {"t": [], "tflops": []}),
            gemm=dict(data.get("gemm") or {}),
            memory=dict(data.get("memory") or {}),
            copies=dict(data.get("copies") or {}),
            xid_lines=data.get("xid_lines", []),
        )


def columns(samples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """[{t, temperature_c, ...}] → {t: [...], temperature_c: [...]}; a quantity no sample has
    is left out, a missing reading is null."""
    present = [k for k in SAMPLE_KEYS if any(s.get(k) is not None for s in samples)]
    return {k: [s.get(k) for s in samples] for k in present}


def rows(series: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The inverse of `columns`."""
    if not series:
        return []
    length = max(len(v) for v in series.values())
    return [{k: (v[i] if i < len(v) else None) for k, v in series.items()} for i in range(length)]
