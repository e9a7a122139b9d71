"""Which CUDA device (the framework's `gpu(N)`) is which NVML GPU.

NVML numbers GPUs by PCI bus; CUDA, unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, puts the fastest first,
and `CUDA_VISIBLE_DEVICES` hides and renumbers them. Running `gpu(i)` for NVML GPU i therefore
blames the wrong card on a mixed host. The suite sets `CUDA_DEVICE_ORDER=PCI_BUS_ID` before any
CUDA use, asks the CUDA driver itself (libcuda, the library every framework runs on, so its
ordinals are the framework's in this process) for each device's PCI bus id and UUID, and maps
NVML GPUs to CUDA ordinals by bus id, else by UUID. `list_cuda_devices` is the I/O; `map_gpus`
is pure.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verify.values import value

DEVICE_ORDER = "PCI_BUS_ID"
LIBCUDA = "libcuda.so.1"


@dataclass(frozen=True)
class CudaTarget:
    """Where NVML GPU `nvml_index` runs its workloads: `ordinal` (None when it cannot), and why
    not; `hidden` when the user's CUDA_VISIBLE_DEVICES leaves it out on purpose."""

    nvml_index: int
    ordinal: int | None
    uuid: str | None
    pci_bus_id: str | None
    why_not: str | None = None
    hidden: bool = False


def bus_key(bus_id: str | None) -> tuple[int, int, int, int] | None:
    """'00000000:01:00.0' (NVML) and '0000:01:00.0' (CUDA) as one comparable key."""
    if not bus_id:
        return None
    try:
        domain, bus, rest = bus_id.strip().lower().split(":")
        device, _, function = rest.partition(".")
        return int(domain, 16), int(bus, 16), int(device, 16), int(function or "0", 16)
    except ValueError:
        return None


def _uuid_text(raw: bytes) -> str:
    digits = raw.hex()
    return f"GPU-{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:32]}"


class CudaError(Exception):
    pass


def list_cuda_devices(loader: Callable[[str], Any] = ctypes.CDLL) -> dict[str, Any]:
    """The CUDA driver's devices in this process's order: {"value": [{ordinal, pci_bus_id,
    uuid}]} or {"error", "message"} (no libcuda, no device, a driver error)."""

    def call(cuda: Any, name: str, *args: Any) -> None:
        result = getattr(cuda, name)(*args)
        if result != 0:
            text = ctypes.c_char_p()
            getter = getattr(cuda, "cuGetErrorName", None)
            if getter is not None and getter(result, ctypes.byref(text)) == 0 and text.value:
                raise CudaError(f"{name}: {text.value.decode()}")
            raise CudaError(f"{name}: CUresult {result}")

    try:
        cuda = loader(LIBCUDA)
        call(cuda, "cuInit", 0)
        count = ctypes.c_int()
        call(cuda, "cuDeviceGetCount", ctypes.byref(count))
        devices = []
        for ordinal in range(count.value):
            handle = ctypes.c_int()
            call(cuda, "cuDeviceGet", ctypes.byref(handle), ordinal)
            bus = ctypes.create_string_buffer(64)
            call(cuda, "cuDeviceGetPCIBusId", bus, 64, handle)
            raw = (ctypes.c_ubyte * 16)()
            uuid_call = (
                "cuDeviceGetUuid_v2" if hasattr(cuda, "cuDeviceGetUuid_v2") else "cuDeviceGetUuid"
            )
            call(cuda, uuid_call, raw, handle)
            devices.append(
                {
                    "ordinal": ordinal,
                    "pci_bus_id": bus.value.decode(),
                    "uuid": _uuid_text(bytes(raw)),
                }
            )
        return {"value": devices}
    except (OSError, AttributeError, CudaError) as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


def nvml_identity(device: dict[str, Any]) -> dict[str, Any]:
    """One NVML GPU of a snapshot as map_gpus and the reports know it: index, UUID, bus id, name
    and compute capability."""
    pci = value(device.get("nvmlDeviceGetPciInfo_v3")) or {}
    return {
        "index": device["index"],
        "uuid": value(device.get("nvmlDeviceGetUUID")),
        "pci_bus_id": pci.get("busId"),
        "name": value(device.get("nvmlDeviceGetName")),
        "compute_capability": value(device.get("nvmlDeviceGetCudaComputeCapability")),
    }


def map_gpus(
    nvml_gpus: list[dict[str, Any]],
    cuda: dict[str, Any],
    visible: str | None = None,
) -> dict[int, CudaTarget]:
    """NVML GPU index -> its CUDA target. `nvml_gpus`: [{index, uuid, pci_bus_id}]; `cuda`: what
    list_cuda_devices returned; `visible`: CUDA_VISIBLE_DEVICES as set (None when unset)."""
    targets: dict[int, CudaTarget] = {}
    listed = cuda.get("value")
    uuids = [gpu.get("uuid") for gpu in nvml_gpus]
    for gpu in nvml_gpus:
        index, uuid, bus_id = gpu["index"], gpu.get("uuid"), gpu.get("pci_bus_id")
        target = functools.partial(CudaTarget, index, uuid=uuid, pci_bus_id=bus_id)

        if listed is None:
            why = f"{cuda.get('error', 'CUDA')}: {cuda.get('message', 'no device list')}"
            targets[index] = target(
                None, why_not=f"the CUDA driver cannot list its devices ({why})"
            )
            continue
        match = [
            d for d in listed if bus_key(d.get("pci_bus_id")) == bus_key(bus_id) and bus_key(bus_id)
        ]
        # A UUID identifies a card only when no other NVML GPU shares it (anonymised dumps do).
        if not match and uuid and uuids.count(uuid) == 1:
            match = [d for d in listed if d.get("uuid") == uuid]
        if len(match) == 1:
            targets[index] = target(match[0]["ordinal"])
        elif visible is not None:
            targets[index] = target(
                None, why_not=f"not visible to CUDA (CUDA_VISIBLE_DEVICES={visible})", hidden=True
            )
        else:
            seen = ", ".join(d.get("pci_bus_id") or "?" for d in listed) or "none"
            why = f"no CUDA device has its bus id {bus_id} or UUID {uuid} (CUDA lists: {seen})"
            targets[index] = target(None, why_not=why)
    return targets


def cuda_visible_devices(environ: dict[str, str] | None = None) -> str | None:
    return (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
