"""The per-host JSON report (schema `labrig.verify/1`, see verify/CONTRACTS.md section 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from verify import __version__, pcie
from verify.outcome import RunInfo
from verify.result import REPORT_SCHEMA, CheckResult, count_statuses
from verify.values import cuda_version_text, value


def summarise(results: list[CheckResult]) -> dict[str, Any]:
    counts = count_statuses(results)
    blocking = [item for item in results if item.blocking]
    first = blocking[0] if blocking else None
    return {
        **counts,
        "ok": not blocking,
        "first_failure": (
            {"check_id": first.check_id, "gpu": first.gpu, "reason": first.reason}
            if first
            else None
        ),
    }


def _link(device: dict[str, Any]) -> dict[str, str | None]:
    """The link at the snapshot (idle), the card's maximum and the host port's, as text."""
    current, card = pcie.current_of(device), pcie.card_of(device)
    recorded = value(device.get("pcie_host")) or {}
    host = pcie.Link(recorded.get("max_gen"), recorded.get("max_width"))

    def label(link: pcie.Link) -> str | None:
        return link.label() if link.gen or link.width else None

    return {"current": label(current), "max": label(card), "host_max": label(host)}


def gpu_inventory(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Each GPU as a lab finds it again: identity (UUID, serial, VBIOS, bus id), driver, link."""
    driver = value(snapshot["nvml"].get("nvmlSystemGetDriverVersion"))
    inventory = []
    for device in snapshot["nvml"].get("gpus") or []:
        capability = value(device.get("nvmlDeviceGetCudaComputeCapability"))
        memory = value(device.get("nvmlDeviceGetMemoryInfo")) or {}
        pci = value(device.get("nvmlDeviceGetPciInfo_v3")) or {}
        mig = value(device.get("nvmlDeviceGetMigMode"))
        inventory.append(
            {
                "index": device["index"],
                "name": value(device.get("nvmlDeviceGetName")),
                "uuid": value(device.get("nvmlDeviceGetUUID")),
                "serial": value(device.get("nvmlDeviceGetSerial")),
                "vbios": value(device.get("nvmlDeviceGetVbiosVersion")),
                "pci_bus_id": pci.get("busId"),
                "driver": driver,
                "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
                "memory_total_mib": memory["total"] // 2**20 if "total" in memory else None,
                "mig_mode": bool(mig[0]) if isinstance(mig, list) else None,
                "link": _link(device),
            }
        )
    return inventory


def versions(snapshot: dict[str, Any]) -> dict[str, Any]:
    nvml = snapshot["nvml"]
    cuda = value(nvml.get("nvmlSystemGetCudaDriverVersion_v2"))
    return {
        "driver": value(nvml.get("nvmlSystemGetDriverVersion")),
        "cuda_driver": cuda_version_text(cuda) if cuda else None,
        "nvml": value(nvml.get("nvmlSystemGetNVMLVersion")),
        "python": snapshot.get("python"),
        "kernel": snapshot.get("kernel"),
        "os": snapshot.get("os_release"),
    }


def build_report(
    snapshot: dict[str, Any], results: list[CheckResult], run: RunInfo
) -> dict[str, Any]:
    probe = snapshot.get("framework") or {}
    report = {
        "schema": REPORT_SCHEMA,
        "host": run.host,
        "started": run.started,
        "duration_s": round(run.duration_s, 3),
        # Where the time went: gathering includes importing the framework.
        "phases": dict(run.phases),
        "labrig_version": __version__,
        "mode": "cpu-only" if run.cpu_only else "gpu",
        "framework": {"name": probe.get("name"), "version": probe.get("version")},
        "versions": versions(snapshot),
        "gpus": gpu_inventory(snapshot),
        "checks": [item.to_dict() for item in results],
        "summary": summarise(results),
        "exit_code": run.exit_code,
    }
    if snapshot.get("source"):
        # Judged from a recording (an nvidia-smi dump), not this machine: say which.
        report["source"] = snapshot["source"]
    return report


def write(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
