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


def labrig_nvidia_slots(scan: list[str]) -> list[dict[str, str]]:
    """[{"pci_slot", "device"}] of the NVIDIA display controllers (class 0x0300 VGA, 0x0302 3D) in
    a PCI scan of "slot vendor device class" lines, as tasks/gather.yml reads them from sysfs."""
    slots = []
    for line in scan or []:
        fields = str(line).lower().split()
        if len(fields) >= 4 and fields[1] == "0x10de" and fields[3][:6] in ("0x0300", "0x0302"):
            slots.append({"pci_slot": fields[0], "device": fields[2][2:]})
    return slots


def labrig_nvidia_gpus(
    scan: list[str], path: str, families: list[dict[str, str]], overrides: dict | None = None
) -> list[dict[str, str]]:
    """[{"pci_slot", "pci_id", "model", "compute_capability"}] for each NVIDIA GPU of the scan,
    named from pci.ids at `path`; `overrides` ({device id: {model, compute_capability}}) win."""
    slots = labrig_nvidia_slots(scan)
    names = labrig_nvidia_pci_names([slot["device"] for slot in slots], path)
    gpus = []
    for slot in slots:
        device = slot["device"]
        known = {**labrig_gpu_identity(names.get(device, ""), families)}
        known.update((overrides or {}).get(device) or {})
        gpus.append(
            {
                "pci_slot": slot["pci_slot"],
                "pci_id": f"10de:{device}",
                "model": known.get("model") or f"NVIDIA device 10de:{device}",
                "compute_capability": str(known.get("compute_capability") or ""),
            }
        )
    return gpus


class FilterModule:
    def filters(self):
        return {
            "labrig_nvidia_pci_names": labrig_nvidia_pci_names,
            "labrig_gpu_identity": labrig_gpu_identity,
            "labrig_nvidia_gpus": labrig_nvidia_gpus,
        }
