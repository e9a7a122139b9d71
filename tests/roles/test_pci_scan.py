"""Preflight's PCI scan reader (filter_plugins/pci_ids.py): NVIDIA display controllers only, named
from pci.ids, with the operator's overrides winning."""

from __future__ import annotations

from role_support import load_plugin

SCAN = [
    "0000:00:02.0 0x8086 0x3e92 0x030000",  # Intel VGA
    "0000:01:00.0 0x10de 0x2204 0x030000",  # NVIDIA VGA
    "0000:01:00.1 0x10de 0x1aef 0x040300",  # the same card's HDMI audio
    "0000:41:00.0 0x10DE 0x2330 0x030200",  # NVIDIA 3D controller, upper-case hex
    "garbage",
]
FAMILIES = [{"chip": "GA10[2-7]", "compute_capability": "8.6"}]


def test_only_nvidia_display_controllers_are_gpus(tmp_path):
    pci = load_plugin("preflight", "filter_plugins", "pci_ids")
    ids = tmp_path / "pci.ids"
    ids.write_text("10de  NVIDIA Corporation\n\t2204  GA102 [GeForce RTX 3090]\n8086  Intel\n")

    gpus = pci.labrig_nvidia_gpus(
        SCAN, str(ids), FAMILIES, {"2330": {"model": "H100 SXM5", "compute_capability": 9.0}}
    )

    assert gpus == [
        {
            "pci_slot": "0000:01:00.0",
            "pci_id": "10de:2204",
            "model": "GeForce RTX 3090",
            "compute_capability": "8.6",
        },
        {
            "pci_slot": "0000:41:00.0",
            "pci_id": "10de:2330",
            "model": "H100 SXM5",
            "compute_capability": "9.0",
        },
    ]
    assert pci.labrig_nvidia_gpus(SCAN[:1], str(ids), FAMILIES) == []
