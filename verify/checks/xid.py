"""Xid events in the kernel log since boot, classified from NVIDIA's Xid catalogue.

The driver logs every GPU error it sees as `NVRM: Xid (PCI:0000:2b:00): 79, pid=..., GPU has
fallen off the bus.`; the snapshot keeps those lines (verify/snapshot.py, `kernel_log`). Errors an
application causes on a healthy GPU (NVIDIA's device plugin skips the same five: 13, 31, 43, 45,
68) are reported; every other Xid fails its GPU with the catalogue's meaning. An event on a bus id
NVML no longer lists (a GPU that fell off the bus is gone from NVML) fails the host.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from verify.checks.common import describe, gpus, no_gpu_reason, not_recorded
from verify.registry import Judgement, check, fail, ok, skip
from verify.values import value

# Raised by an application on a healthy GPU (NVIDIA k8s-device-plugin's applicationErrorXids).
APPLICATION_XIDS = {13, 31, 43, 45, 68}

# NVIDIA's Xid catalogue: what the event is, and what to do (docs.nvidia.com/deploy/xid-errors).
CATALOGUE = {
    8: "GPU stopped processing (timeout)",
    13: "Graphics Engine Exception (an application fault)",
    31: "GPU memory page fault (an application fault)",
    32: "invalid or corrupted push buffer stream (PCIe or driver)",
    38: "driver firmware error",
    43: "GPU stopped processing (an application fault)",
    45: "preemptive cleanup after earlier errors",
    48: "double-bit ECC error: reset the GPU",
    54: "auxiliary power is not connected to the GPU board",
    56: "display engine error",
    57: "error programming video memory interface",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt: reset the GPU",
    63: "ECC page retirement or row remapping recorded: reset the GPU to activate it",
    64: "ECC page retirement or row remapper recording failure: run the field diagnostic (RMA)",
    68: "video processor exception (an application fault)",
    69: "graphics engine class error",
    74: "NVLink error",
    79: "GPU has fallen off the bus: check seating, power and the PCIe slot",
    92: "high single-bit ECC error rate",
    94: "contained ECC error: restart the application",
    95: "uncontained ECC error: reset the GPU",
    109: "context switch timeout",
    119: "GSP RPC timeout: reset the GPU or reboot",
    120: "GSP error: reset the GPU or reboot",
    121: "C2C link corrected error",
    140: "unrecovered ECC error",
    143: "GPU initialisation failure",
    154: "GPU recovery action changed",
}

_XID = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})"
    r"(?:\.[0-7])?\): (?P<xid>\d+)\b,?(?P<rest>.*)"
)


def parse_xid_lines(lines: list[str]) -> list[dict[str, Any]]:
    """[{bus: 'domain:bus:device' normalised, xid, text}] of the Xid lines among `lines`."""
    events = []
    for line in lines:
        match = _XID.search(line)
        if match:
            events.append(
                {
                    "bus": normalise_bus(match.group("bus")),
                    "xid": int(match.group("xid")),
                    "text": match.group("rest").strip(" ,"),
                }
            )
    return events


def normalise_bus(bus_id: str) -> str:
    """'00000000:2B:00.0' and '0000:2b:00' both as '0000:2b:00' (domain, bus, device)."""
    parts = bus_id.lower().split(":")
    domain, bus, device = (parts[-3] if len(parts) >= 3 else "0"), parts[-2], parts[-1]
    return f"{int(domain, 16):04x}:{int(bus, 16):02x}:{int(device.split('.')[0], 16):02x}"


def meaning(xid: int) -> str:
    return CATALOGUE.get(xid, "not in this suite's excerpt of NVIDIA's Xid catalogue")


def judge_events(events: list[dict[str, Any]], source: str) -> Judgement:
    """One subject's events since boot."""
    if not events:
        return ok(f"no Xid events since boot ({source})", xids=[])
    counts: dict[int, int] = {}
    for event in events:
        counts[event["xid"]] = counts.get(event["xid"], 0) + 1
    measured = {"xids": sorted(counts), "events": len(events)}
    described = [
        f"Xid {xid}{f' x{n}' if n > 1 else ''}: {meaning(xid)}" for xid, n in sorted(counts.items())
    ]
    faults = [xid for xid in counts if xid not in APPLICATION_XIDS]
    if faults:
        return fail("; ".join(described), **measured)
    return ok(f"application faults only, the GPU stays healthy: {'; '.join(described)}", **measured)


def _bus_of(device: dict[str, Any]) -> str | None:
    bus_id = (value(device.get("nvmlDeviceGetPciInfo_v3")) or {}).get("busId")
    return normalise_bus(bus_id) if bus_id else None


@check("gpu.xid", description="no Xid errors in the kernel log since boot")
def xid(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[Judgement]:
    log = snapshot.get("kernel_log")
    if not_recorded(log):
        return [skip(describe(log))]
    if not log or "error" in log:
        why = f"{log['error']}: {log.get('message')}" if log else "not in the snapshot"
        return [skip(f"kernel log not readable without root on this host ({why})")]
    recorded = log["value"]
    source = recorded.get("source", "kernel log")
    events = parse_xid_lines(recorded.get("lines") or [])
    why = no_gpu_reason(snapshot)
    if why:
        # Without the driver no Xid is logged at all, so a clean log proves nothing here.
        seen = judge_events(events, source)
        tail = f"; {seen.reason}" if events else ""
        return [fail(f"{why}{tail}", **seen.measurements)]
    judged = []
    known = set()
    for device in gpus(snapshot):
        bus = _bus_of(device)
        if bus is None:
            unknown = skip("bus id unknown: Xid events cannot be attributed to this GPU")
            judged.append(replace(unknown, gpu=device["index"]))
            continue
        known.add(bus)
        mine = [event for event in events if event["bus"] == bus]
        judged.append(replace(judge_events(mine, source), gpu=device["index"]))
    elsewhere = [event for event in events if event["bus"] not in known]
    if elsewhere:
        buses = sorted({event["bus"] for event in elsewhere})
        judgement = judge_events(elsewhere, source)
        where = f"on {', '.join(buses)}, a device NVML does not list now: "
        judged.append(replace(judgement, reason=where + judgement.reason))
    return judged
