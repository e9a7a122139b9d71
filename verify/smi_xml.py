"""An `nvidia-smi -q -x` dump turned into the suite's snapshot (`--nvidia-smi-xml FILE`).

Lab admins have these dumps in support bundles and old tickets; judging one with the same checks
as a live run needs no GPU. Every answer is stored under the NVML query it stands for, in the
form `verify/snapshot.py` records live (`{"value": ...}` or `{"error": ..., "message": ...}`), so
the host checks do not know where a snapshot came from:

- an element nvidia-smi printed as `N/A` (or `[Not Supported]`, `Requested functionality has been
  deprecated`, ...) is `NVMLError_NotSupported`, as NVML itself answers;
- an element this driver's schema does not have (`remapped_rows` before v11, the kernel module
  list, the framework build) is `NotRecorded`, which the checks skip with that reason.

The schema changed across drivers 384-595 (DTD v9-v13): `clocks_throttle_reasons` (<= 525) vs
`clocks_event_reasons` (>= 535); `power_readings` vs `gpu_power_readings` vs the
`average_/instant_power_draw` split; ECC counters nested per memory unit (pre-Turing) vs flat
`sram_/dram_` vs the `sram_uncorrectable_parity/_secded` split; `retired_pages` with
`pending_blacklist` or `pending_retirement`; `remapped_rows` absent, `N/A` or populated;
`max_link_gen` (the lower of host and device) vs `max_device_link_gen`/`max_host_link_gen`;
absolute temperature thresholds vs T.Limit-relative ones (Ada and later). The DOCTYPE line does
not tell them apart (a v12 DTD still has the old names under 525), so every reading looks for
each name.

The document is parsed with expat directly: a DOCTYPE naming the external DTD is accepted (it is
never fetched), but an internal DTD subset or any entity declaration is refused, so no entity is
ever expanded.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.parsers import expat

from verify import __version__
from verify.snapshot import SNAPSHOT_FORMAT, SnapshotError

SOURCE_KIND = "nvidia-smi -q -x"
NOT_RECORDED = "NotRecorded"
# Larger than any dump of a 16-GPU machine (about 100 KB per GPU): a bigger file is not one.
MAX_BYTES = 32 << 20

# How nvidia-smi writes "no answer", and the NVML error each stands for.
UNANSWERED = {
    "n/a": "NVMLError_NotSupported",
    "not supported": "NVMLError_NotSupported",
    "requested functionality has been deprecated": "NVMLError_NotSupported",
    "not available in wddm driver model": "NVMLError_NotSupported",
    "not found": "NVMLError_NotSupported",
    "insufficient permissions": "NVMLError_NoPermission",
    "unknown error": "NVMLError_Unknown",
    "gpu is lost": "NVMLError_GpuIsLost",
    "gpu requires reset": "NVMLError_ResetRequired",
}

# nvmlClocksEventReason* bits, by the suffix nvidia-smi gives each element in both spellings.
CLOCK_REASON_BITS = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clocks_setting": 0x100,
}


class SmiXmlError(SnapshotError):
    """A file that is not a usable nvidia-smi dump: the suite cannot run (exit 2)."""


class _Refused(Exception):
    pass


def parse(data: bytes) -> ET.Element:
    """The document's root element, parsed without ever expanding an entity."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(*_: Any) -> None:
        raise _Refused("it declares XML entities, which are refused")

    def doctype(name: str, system_id: Any, public_id: Any, has_internal_subset: int) -> None:
        if has_internal_subset:
            raise _Refused("its DOCTYPE has an internal DTD subset, which is refused")

    def skipped(name: str, is_parameter_entity: int) -> None:
        # With an external DTD named, expat leaves an undeclared &name; to the caller.
        raise _Refused(f"it refers to the XML entity &{name};, which is refused")

    parser.StartDoctypeDeclHandler = doctype
    parser.SkippedEntityHandler = skipped
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(data, True)
    return builder.close()


def read_root(path: str | os.PathLike[str]) -> ET.Element:
    """The `<nvidia_smi_log>` element of the file; SmiXmlError (one line) for anything else."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SmiXmlError(f"cannot read nvidia-smi dump {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise SmiXmlError(f"{path} is over {MAX_BYTES >> 20} MiB: not an nvidia-smi -q -x dump")
    try:
        root = parse(data)
    except _Refused as exc:
        raise SmiXmlError(f"{path}: {exc}") from None
    except expat.ExpatError as exc:
        raise SmiXmlError(
            f"{path} is not well-formed XML (line {exc.lineno}: "
            f"{expat.ErrorString(exc.code)}): not an nvidia-smi -q -x dump"
        ) from None
    if root.tag != "nvidia_smi_log":
        raise SmiXmlError(
            f"{path} is not an nvidia-smi -q -x dump (root element <{root.tag}>, "
            "expected <nvidia_smi_log>)"
        )
    return root


# --- Reading one element's text into an outcome ------------------------------------------------


def _ok(value: Any) -> dict[str, Any]:
    return {"value": value}


def not_recorded(what: str) -> dict[str, Any]:
    return {"error": NOT_RECORDED, "message": f"not in this nvidia-smi -q -x dump ({what})"}


def _unanswered(text: str) -> dict[str, Any] | None:
    key = text.strip().strip("[]").strip().lower()
    error = UNANSWERED.get(key)
    return {"error": error, "message": text.strip()} if error else None


def _first_text(element: ET.Element, *paths: str) -> tuple[str | None, str]:
    """The text of the first of `paths` present, and the path it came from."""
    for path in paths:
        found = element.find(path)
        if found is not None:
            return "".join(found.itertext()).strip(), path
    return None, paths[0]


def reading(
    element: ET.Element, *paths: str, convert: Callable[[str], Any] = str
) -> dict[str, Any]:
    """One element's answer: converted, unanswered (N/A...), or not recorded (absent)."""
    text, path = _first_text(element, *paths)
    if text is None:
        return not_recorded(path)
    if not text:
        return {"error": "ValueError", "message": f"<{path}> is empty"}
    return _converted(text, path, convert)


def _converted(text: str, path: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    unanswered = _unanswered(text)
    if unanswered:
        return unanswered
    try:
        return _ok(convert(text))
    except (ValueError, KeyError) as exc:
        return {"error": "ValueError", "message": f"<{path}> {text!r}: {exc}"}


def number(text: str) -> float:
    """The number in `16x`, `34 C`, `21.00 W`, `24576 MiB`, `9840338777 us`, `87 %`,
    `96 bank(s)`."""
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:[A-Za-z%]+|bank\(s\))?\s*", text)
    if not match:
        raise ValueError("not a number with a unit")
    return float(match.group(1))


def integer(text: str) -> int:
    return int(number(text))


def hex_integer(text: str) -> int:
    return int(text.strip(), 16)


def mib_to_bytes(text: str) -> int:
    if not text.strip().endswith("MiB"):
        raise ValueError("expected MiB")
    return int(number(text)) * 2**20


def watts_to_mw(text: str) -> int:
    if not text.strip().endswith("W"):
        raise ValueError("expected W")
    return round(number(text) * 1000)


def yes_no(text: str) -> int:
    return {"yes": 1, "no": 0}[text.strip().lower()]


def enabled(text: str) -> int:
    return {"enabled": 1, "disabled": 0}[text.strip().lower()]


def pstate(text: str) -> int:
    match = re.fullmatch(r"P(\d+)", text.strip())
    if not match:
        raise ValueError("not a P-state")
    return int(match.group(1))


def smi_time(text: str) -> str:
    """`Tue Aug 27 01:29:36 2019` (the recording machine's local time) in ISO form."""
    return dt.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").isoformat()


# --- Per-GPU readings ---------------------------------------------------------------------------


def _pci_info(gpu: ET.Element) -> dict[str, Any]:
    bus_id = reading(gpu, "pci/pci_bus_id")
    if "error" in bus_id:
        return bus_id
    info: dict[str, Any] = {"busId": bus_id["value"], "busIdLegacy": bus_id["value"]}
    for key, path in (
        ("domain", "pci/pci_domain"),
        ("bus", "pci/pci_bus"),
        ("device", "pci/pci_device"),
        ("pciDeviceId", "pci/pci_device_id"),
        ("pciSubSystemId", "pci/pci_sub_system_id"),
    ):
        info[key] = reading(gpu, path, convert=hex_integer).get("value")
    return _ok(info)


def _memory(gpu: ET.Element) -> dict[str, Any]:
    parts = {
        key: reading(gpu, f"fb_memory_usage/{key}", convert=mib_to_bytes)
        for key in ("total", "free", "used")
    }
    for outcome in parts.values():
        if "error" in outcome:
            return outcome
    return _ok({key: outcome["value"] for key, outcome in parts.items()})


def _pair(gpu: ET.Element, current: str, pending: str, convert: Callable[[str], int]) -> dict:
    now = reading(gpu, current, convert=convert)
    if "error" in now:
        return now
    later = reading(gpu, pending, convert=convert)
    return _ok([now["value"], later.get("value", now["value"])])


# Uncorrectable counters of each ECC layout: nested per memory unit (pre-Turing), flat (Turing and
# later up to 565), flat with the SRAM count split by protection (570 and later, Ampere+).
_UNCORRECTED_LAYOUTS = (
    ("double_bit/total",),
    ("sram_uncorrectable", "dram_uncorrectable"),
    ("sram_uncorrectable_parity", "sram_uncorrectable_secded", "dram_uncorrectable"),
)


def _uncorrected(gpu: ET.Element, scope: str) -> dict[str, Any]:
    block = gpu.find(f"ecc_errors/{scope}")
    if block is None:
        return not_recorded(f"ecc_errors/{scope}")
    for layout in _UNCORRECTED_LAYOUTS[::-1]:
        if all(block.find(name) is not None for name in layout):
            outcomes = [reading(block, name, convert=integer) for name in layout]
            counted = [outcome["value"] for outcome in outcomes if "value" in outcome]
            if counted:
                return _ok(sum(counted))
            return outcomes[-1]
    return not_recorded(f"ecc_errors/{scope}: no uncorrectable counter this parser knows")


def _retired_pages(gpu: ET.Element, cause: str) -> dict[str, Any]:
    """What nvmlDeviceGetRetiredPages_v2 returns: [{address, timestamp}] (epoch seconds, the
    dump's local time read as UTC; None where the schema has no timestamps)."""
    block = gpu.find(f"retired_pages/{cause}")
    if block is None:
        return not_recorded(f"retired_pages/{cause}")
    count = reading(block, "retired_count", convert=integer)
    if "error" in count:
        return count
    pages = []
    for page in block.iter("retired_page"):
        address = reading(page, "retired_page_address", convert=hex_integer).get("value")
        stamp = reading(page, "retired_page_timestamp", convert=smi_time).get("value")
        epoch = None
        if stamp:
            epoch = int(
                dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc).timestamp()
            )
        pages.append({"address": address, "timestamp": epoch})
    # Old schemas list addresses only (`retired_page_addresses`) or not at all: the count rules.
    pages += [{"address": None, "timestamp": None}] * max(0, count["value"] - len(pages))
    return _ok(pages[: count["value"]])


def _retirement_pending(gpu: ET.Element) -> dict[str, Any]:
    # `pending_blacklist` was renamed `pending_retirement` (both present on some drivers, one N/A).
    paths = ("retired_pages/pending_retirement", "retired_pages/pending_blacklist")
    outcomes = [reading(gpu, path, convert=yes_no) for path in paths]
    for outcome in outcomes:
        if "value" in outcome:
            return outcome
    recorded = [outcome for outcome in outcomes if outcome.get("error") != NOT_RECORDED]
    return recorded[0] if recorded else not_recorded("retired_pages/pending_retirement")


def _remapped_rows(gpu: ET.Element) -> dict[str, Any]:
    block = gpu.find("remapped_rows")
    if block is None:
        return not_recorded("remapped_rows")
    if len(block) == 0:
        # Pre-Ampere, GeForce, and A100s in MIG mode print the whole element as N/A.
        return _converted("".join(block.itertext()).strip() or "N/A", "remapped_rows", int)
    fields = [
        reading(block, "remapped_row_corr", convert=integer),
        reading(block, "remapped_row_unc", convert=integer),
        reading(block, "remapped_row_pending", convert=yes_no),
        reading(block, "remapped_row_failure", convert=yes_no),
    ]
    for outcome in fields:
        if "error" in outcome:
            return outcome
    return _ok([outcome["value"] for outcome in fields])


def _remapper_histogram(gpu: ET.Element) -> dict[str, Any]:
    block = gpu.find("remapped_rows/row_remapper_histogram")
    if block is None:
        return not_recorded("remapped_rows/row_remapper_histogram")
    values = {}
    for key in ("max", "high", "partial", "low", "none"):
        outcome = reading(block, f"row_remapper_histogram_{key}", convert=integer)
        if "error" in outcome:
            return outcome
        values[key] = outcome["value"]
    return _ok(values)


_LINK = "pci/pci_gpu_link_info"


def _max_link_generation(gpu: ET.Element) -> dict[str, Any]:
    """NVML's nvmlDeviceGetMaxPcieLinkGeneration: the most the device *and system* allow."""
    system = reading(gpu, f"{_LINK}/pcie_gen/max_link_gen", convert=integer)
    if "value" in system:
        return system
    device = reading(gpu, f"{_LINK}/pcie_gen/max_device_link_gen", convert=integer)
    host = reading(gpu, f"{_LINK}/pcie_gen/max_host_link_gen", convert=integer)
    if "value" in device and "value" in host:
        return _ok(min(device["value"], host["value"]))
    return system


def _pcie_host(gpu: ET.Element) -> dict[str, Any]:
    """The host side of the link, as far as the dump says: v12+ prints the host port's highest
    generation; no schema prints the slot's width."""
    host = reading(gpu, f"{_LINK}/pcie_gen/max_host_link_gen", convert=integer)
    if "error" in host:
        return not_recorded(f"{_LINK}/pcie_gen/max_host_link_gen")
    return _ok({"max_gen": host["value"], "max_width": None, "source": SOURCE_KIND})


def _temperature_thresholds(gpu: ET.Element) -> tuple[dict[str, Any], dict[str, Any]]:
    """(slowdown, shutdown) in °C. Ada and later print thresholds relative to T.Limit: the
    current `gpu_temp_tlimit` headroom minus a threshold is how far the GPU is from it."""
    slowdown = reading(gpu, "temperature/gpu_temp_slow_threshold", convert=integer)
    shutdown = reading(gpu, "temperature/gpu_temp_max_threshold", convert=integer)
    if slowdown.get("error") != NOT_RECORDED:
        return slowdown, shutdown
    current = reading(gpu, "temperature/gpu_temp", convert=integer)
    headroom = reading(gpu, "temperature/gpu_temp_tlimit", convert=integer)
    relative = []
    for name in ("gpu_temp_slow_tlimit_threshold", "gpu_temp_max_tlimit_threshold"):
        threshold = reading(gpu, f"temperature/{name}", convert=integer)
        for outcome in (threshold, headroom, current):
            if "error" in outcome:
                relative.append(outcome)
                break
        else:
            relative.append(_ok(current["value"] + headroom["value"] - threshold["value"]))
    return relative[0], relative[1]


def _clock_reasons(gpu: ET.Element) -> dict[str, Any]:
    for block_name, prefix in (
        ("clocks_event_reasons", "clocks_event_reason_"),
        ("clocks_throttle_reasons", "clocks_throttle_reason_"),
    ):
        block = gpu.find(block_name)
        if block is None:
            continue
        mask, answered, unanswered = 0, 0, None
        for child in block:
            bit = CLOCK_REASON_BITS.get(child.tag.removeprefix(prefix))
            if bit is None:
                continue
            text = (child.text or "").strip()
            if text == "Active":
                mask |= bit
                answered += 1
            elif text == "Not Active":
                answered += 1
            else:
                unanswered = unanswered or _unanswered(text)
        if answered:
            return _ok(mask)
        # A vGPU guest prints the whole block as N/A.
        text = "".join(block.itertext()).strip()
        return unanswered or _unanswered(text) or not_recorded(f"{block_name}: no reason known")
    return not_recorded("clocks_event_reasons")


def _clock_reason_counters(gpu: ET.Element) -> dict[str, Any]:
    block = gpu.find("clocks_event_reasons_counters")
    if block is None:
        return not_recorded("clocks_event_reasons_counters")
    counters = {}
    for child in block:
        outcome = _converted((child.text or "").strip(), child.tag, integer)
        if "value" in outcome:
            counters[child.tag.removeprefix("clocks_event_reasons_counters_")] = outcome["value"]
    return _ok(counters)


def _power_draw(gpu: ET.Element) -> dict[str, Any]:
    return reading(
        gpu,
        "gpu_power_readings/instant_power_draw",
        "gpu_power_readings/power_draw",
        "power_readings/power_draw",
        "gpu_power_readings/average_power_draw",
        "power_readings/instant_power_draw",
        convert=watts_to_mw,
    )


def _power_limit(gpu: ET.Element) -> dict[str, Any]:
    return reading(
        gpu,
        "gpu_power_readings/current_power_limit",
        "power_readings/enforced_power_limit",
        "power_readings/current_power_limit",
        convert=watts_to_mw,
    )


def _compute_processes(gpu: ET.Element) -> dict[str, Any]:
    block = gpu.find("processes")
    if block is None:
        return not_recorded("processes")
    running = []
    for process in block.iter("process_info"):
        kind = (process.findtext("type") or "").strip()
        # NVML's compute list holds CUDA contexts: type C, or C+G; G is graphics only.
        if "C" not in kind:
            continue
        memory = reading(process, "used_memory", convert=mib_to_bytes).get("value")
        running.append(
            {
                "pid": reading(process, "pid", convert=int).get("value"),
                "usedGpuMemory": memory,
                "name": (process.findtext("process_name") or "").strip(),
                "type": kind,
            }
        )
    return _ok(running)


def _utilization(gpu: ET.Element) -> dict[str, Any]:
    util = reading(gpu, "utilization/gpu_util", convert=integer)
    if "error" in util:
        return util
    memory = reading(gpu, "utilization/memory_util", convert=integer)
    return _ok({"gpu": util["value"], "memory": memory.get("value")})


def _mig_devices(gpu: ET.Element) -> dict[str, Any]:
    block = gpu.find("mig_devices")
    if block is None:
        return not_recorded("mig_devices")
    return _ok(len(block.findall("mig_device")))


def convert_gpu(gpu: ET.Element, index: int) -> dict[str, Any]:
    slowdown, shutdown = _temperature_thresholds(gpu)
    return {
        "index": index,
        "nvmlDeviceGetName": reading(gpu, "product_name"),
        "nvmlDeviceGetUUID": reading(gpu, "uuid"),
        "nvmlDeviceGetSerial": reading(gpu, "serial"),
        "nvmlDeviceGetVbiosVersion": reading(gpu, "vbios_version"),
        "nvmlDeviceGetPciInfo_v3": _pci_info(gpu),
        "nvmlDeviceGetCudaComputeCapability": not_recorded("compute capability"),
        "nvmlDeviceGetMemoryInfo": _memory(gpu),
        "nvmlDeviceGetEccMode": _pair(gpu, "ecc_mode/current_ecc", "ecc_mode/pending_ecc", enabled),
        "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE": _uncorrected(gpu, "volatile"),
        "nvmlDeviceGetTotalEccErrors:UNCORRECTED:AGGREGATE": _uncorrected(gpu, "aggregate"),
        "nvmlDeviceGetRetiredPagesPendingStatus": _retirement_pending(gpu),
        "nvmlDeviceGetRetiredPages_v2:MULTIPLE_SINGLE_BIT_ECC_ERRORS": _retired_pages(
            gpu, "multiple_single_bit_retirement"
        ),
        "nvmlDeviceGetRetiredPages_v2:DOUBLE_BIT_ECC_ERROR": _retired_pages(
            gpu, "double_bit_retirement"
        ),
        "nvmlDeviceGetRemappedRows": _remapped_rows(gpu),
        "nvmlDeviceGetRowRemapperHistogram": _remapper_histogram(gpu),
        "nvmlDeviceGetCurrPcieLinkWidth": reading(
            gpu, f"{_LINK}/link_widths/current_link_width", convert=integer
        ),
        "nvmlDeviceGetMaxPcieLinkWidth": reading(
            gpu, f"{_LINK}/link_widths/max_link_width", convert=integer
        ),
        "nvmlDeviceGetCurrPcieLinkGeneration": reading(
            gpu, f"{_LINK}/pcie_gen/current_link_gen", convert=integer
        ),
        "nvmlDeviceGetMaxPcieLinkGeneration": _max_link_generation(gpu),
        "nvmlDeviceGetGpuMaxPcieLinkGeneration": reading(
            gpu, f"{_LINK}/pcie_gen/max_device_link_gen", convert=integer
        ),
        "pcie_host": _pcie_host(gpu),
        "nvmlDeviceGetPersistenceMode": reading(gpu, "persistence_mode", convert=enabled),
        "nvmlDeviceGetTemperature:GPU": reading(gpu, "temperature/gpu_temp", convert=integer),
        "nvmlDeviceGetTemperatureThreshold:SLOWDOWN": slowdown,
        "nvmlDeviceGetTemperatureThreshold:SHUTDOWN": shutdown,
        "nvmlDeviceGetCurrentClocksEventReasons": _clock_reasons(gpu),
        "clocks_event_reasons_counters": _clock_reason_counters(gpu),
        "nvmlDeviceGetUtilizationRates": _utilization(gpu),
        "nvmlDeviceGetPerformanceState": reading(gpu, "performance_state", convert=pstate),
        "nvmlDeviceGetPowerUsage": _power_draw(gpu),
        "nvmlDeviceGetEnforcedPowerLimit": _power_limit(gpu),
        "nvmlDeviceGetComputeRunningProcesses": _compute_processes(gpu),
        "nvmlDeviceGetMigMode": _pair(gpu, "mig_mode/current_mig", "mig_mode/pending_mig", enabled),
        "mig_devices": _mig_devices(gpu),
    }


# --- The whole snapshot -------------------------------------------------------------------------


def _cuda_version(text: str) -> int:
    major, minor = (int(part) for part in text.strip().split(".")[:2])
    return major * 1000 + minor * 10


def _dtd(path: str | os.PathLike[str]) -> str | None:
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace")
    match = re.search(r"<!DOCTYPE\s+nvidia_smi_log\s+SYSTEM\s+\"([^\"]+)\"", head)
    return match.group(1) if match else None


def convert(root: ET.Element, *, path: str | os.PathLike[str], host: str) -> dict[str, Any]:
    """The snapshot of a parsed dump; `host` names it in the reports (no dump records one)."""
    gpus = [convert_gpu(gpu, index) for index, gpu in enumerate(root.findall("gpu"))]
    driver = reading(root, "driver_version")
    attached = reading(root, "attached_gpus", convert=int)
    timestamp = reading(root, "timestamp", convert=smi_time)
    source = {
        "kind": SOURCE_KIND,
        "file": Path(path).name,
        "dtd": _dtd(path),
        "timestamp": timestamp.get("value"),
        "driver_version": driver.get("value"),
        "attached_gpus": attached.get("value"),
        "gpus_in_dump": len(gpus),
    }
    why = "a recorded nvidia-smi dump"
    return {
        "format": SNAPSHOT_FORMAT,
        "recorded": timestamp.get("value"),
        "labrig_version": __version__,
        "host": host,
        "kernel": None,
        "python": None,
        "pid": None,
        "source": source,
        "modules": not_recorded(f"/proc/modules: {why}"),
        "driver_version_file": not_recorded(f"/proc/driver/nvidia/version: {why}"),
        "kernel_log": not_recorded(f"kernel log: {why}"),
        "nvml": {
            # nvidia-smi is itself an NVML client: a dump listing GPUs means NVML initialised.
            "nvmlInit": _ok(None),
            "via": SOURCE_KIND,
            "library_file": not_recorded("libnvidia-ml path"),
            "nvmlSystemGetDriverVersion": driver,
            "nvmlSystemGetNVMLVersion": not_recorded("NVML version"),
            "nvmlSystemGetCudaDriverVersion_v2": reading(
                root, "cuda_version", convert=_cuda_version
            ),
            "nvmlDeviceGetCount": _ok(len(gpus)),
            "gpus": gpus,
        },
        "nvidia_smi": {
            "argv": ["nvidia-smi", "-q", "-x"],
            "format": "xml",
            "returncode": 0,
            "gpu_count": len(gpus),
            "attached_gpus": attached.get("value"),
            "driver_version": driver.get("value"),
        },
        "framework": not_recorded(f"framework build: {why}"),
    }


def load(path: str | os.PathLike[str], *, host: str | None = None) -> dict[str, Any]:
    """Read and convert a dump; SmiXmlError (one line) when it cannot be."""
    root = read_root(path)
    try:
        return convert(root, path=path, host=host or Path(path).stem)
    except Exception as exc:  # a converter bug must still be one line, never a traceback
        raise SmiXmlError(f"cannot convert {path}: {type(exc).__name__}: {exc}") from None
