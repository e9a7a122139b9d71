"""Name NVIDIA GPUs from the PCI id database (pci.ids) and derive their CUDA compute capability
from the chip family in that name ("GA102 [GeForce RTX 3090]" -> GA102 -> 8.6).

Read on the controller: one file serves the whole fleet, and a minimal workstation need not carry
pciutils. A device the database does not know stays unnamed, with no compute capability.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

NVIDIA = "10de"
# "GA102 [GeForce RTX 3090]", "GH100[H100 SXM5 80GB]", "GA104GL [RTX A4000]", "Tesla K80" (no chip).
_NAMED = re.compile(
    r"^(?P<chip>[A-Z]{2}\d{2,3}[A-Z]*)?\s*(?:\[(?P<model>[^\]]+)\])?\s*(?P<rest>.*)$"
)


@functools.lru_cache(maxsize=4)
def _nvidia_devices(path: str) -> dict[str, str]:
    devices: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return devices
    inside = False
    for line in text.splitlines():
        if line.startswith(f"{NVIDIA}  "):
            inside = True
        elif inside and line[:1] not in ("\t", "#", ""):
            break
        elif inside and line.startswith("\t") and not line.startswith("\t\t"):
            device, _, name = line.strip().partition("  ")
            devices[device.lower()] = name.strip()
    return devices


def labrig_nvidia_pci_names(device_ids: list[str], path: str) -> dict[str, str]:
    """{device id: pci.ids name} for the NVIDIA device ids the database knows."""
    known = _nvidia_devices(str(path))
    return {device: known[device] for device in device_ids if device in known}


def labrig_gpu_identity(name: str, families: list[dict[str, str]]) -> dict[str, str]:
    """{"chip", "model", "compute_capability"} from a pci.ids name; "" where it cannot tell."""
    match = _NAMED.match(name or "")
    chip = (match.group("chip") or "") if match else ""
    model = ((match.group("model") or match.group("rest")) if match else "") or name or ""
    matching = (row for row in families if chip and re.match(row["chip"], chip))
    capability = next((str(row["compute_capability"]) for row in matching), "")
    return {"chip": chip, "model": model.strip(), "compute_capability": capability}


class FilterModule:
    def filters(self):
        return {
            "labrig_nvidia_pci_names": labrig_nvidia_pci_names,
            "labrig_gpu_identity": labrig_gpu_identity,
        }
