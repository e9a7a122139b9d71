"""PCIe link arithmetic shared by the host check (`gpu.pcie_width`), the under-load link check and
the copy floors (`workload.perf.*`).

A link trains to the lower of what the card and the host port (slot, switch) support, and at idle
NVIDIA GPUs drop it to Gen1 by design, so a link is judged only under load and only against that
lower maximum: an x8 slot or a Gen3 host is not a fault, a link below what both ends support is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from verify.values import value

# Usable GB/s per lane and direction after line encoding (8b/10b to Gen2, 128b/130b from Gen3;
# Gen6's FLIT mode taken at its raw rate).
LANE_GB_PER_S = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.877}
GT_PER_S_GEN = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}


@dataclass(frozen=True)
class Link:
    """A link's (or one end's) generation and width; None where not known."""

    gen: int | None = None
    width: int | None = None

    def label(self) -> str:
        gen = f"Gen{self.gen}" if self.gen else "Gen?"
        width = f"x{self.width}" if self.width else "x?"
        return f"{gen} {width}"


def gen_from_speed(text: str | None) -> int | None:
    """Linux sysfs `max_link_speed` ("16.0 GT/s PCIe", "8 GT/s") as a generation."""
    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*GT/s", text or "")
    return GT_PER_S_GEN.get(float(match.group(1))) if match else None


def _lower(a: int | None, b: int | None) -> int | None:
    known = [value for value in (a, b) if value]
    return min(known) if known else None


def attainable(card: Link, host: Link | None) -> Link:
    """The best link both ends allow: the lower of the two where both are known."""
    host = host or Link()
    return Link(_lower(card.gen, host.gen), _lower(card.width, host.width))


def rate_gb_per_s(link: Link) -> float | None:
    if not link.gen or not link.width or link.gen not in LANE_GB_PER_S:
        return None
    return LANE_GB_PER_S[link.gen] * link.width


def describe(current: Link, card: Link, host: Link | None = None) -> str:
    """'Gen4 x8 (card max Gen4 x16, host max Gen4 x8)' for a report."""
    ends = [f"card max {card.label()}"]
    if host and (host.gen or host.width):
        ends.append(f"host max {host.label()}")
    return f"{current.label()} ({', '.join(ends)})"


def shortfalls(current: Link, card: Link, host: Link | None) -> list[str]:
    """Where the link runs below what both ends support; only what is known is judged."""
    best = attainable(card, host)
    found = []
    if current.gen and best.gen and current.gen < best.gen:
        found.append(f"Gen{current.gen} below the Gen{best.gen} both ends support")
    # A narrower width is a fault only against a known slot width: NVML reports the card's own.
    if current.width and host and host.width and best.width and current.width < best.width:
        found.append(f"x{current.width} below the x{best.width} both ends support")
    return found


def floor_scale(negotiated: Link, card: Link) -> float | None:
    """How much of the card's own link rate the negotiated link gives (copy floors are set for
    the card's maximum link): 0.5 for Gen4 x8 on a Gen4 x16 card."""
    have, full = rate_gb_per_s(negotiated), rate_gb_per_s(card)
    if have is None or not full:
        return None
    return min(1.0, have / full)


def card_of(device: dict[str, Any]) -> Link:
    """A snapshot GPU's own maximum link (NVML's plain max generation is capped by the host)."""
    gen = value(device.get("nvmlDeviceGetGpuMaxPcieLinkGeneration"))
    if not isinstance(gen, int):
        gen = value(device.get("nvmlDeviceGetMaxPcieLinkGeneration"))
    return Link(gen, value(device.get("nvmlDeviceGetMaxPcieLinkWidth")))


def host_of(device: dict[str, Any]) -> Link:
    """The host port's maximum as far as the snapshot knows: the recorded host side (sysfs, or
    nvidia-smi's max_host_link_gen), else what NVML's system-capped generation implies."""
    recorded = value(device.get("pcie_host")) or {}
    gen, width = recorded.get("max_gen"), recorded.get("max_width")
    system = value(device.get("nvmlDeviceGetMaxPcieLinkGeneration"))
    if isinstance(system, int):
        gen = min(gen, system) if isinstance(gen, int) else system
    return Link(gen, width)


def current_of(device: dict[str, Any]) -> Link:
    return Link(
        value(device.get("nvmlDeviceGetCurrPcieLinkGeneration")),
        value(device.get("nvmlDeviceGetCurrPcieLinkWidth")),
    )
