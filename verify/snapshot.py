"""Gather every fact the host checks need, once, into a JSON-serialisable snapshot.

This is the only I/O of the host checks: `verify.checks` are pure functions over the dict built
here, so a snapshot recorded on a real workstation (`python -m verify --record-snapshot PATH`)
replays exactly (`--snapshot PATH`).

Every query is stored as `{"value": ...}` or `{"error": "<exception class>", "message": "..."}`,
never dropped: a check must be able to tell "not supported on this GPU" (skipped) from "failed".
NVML results are stored under the name of the pynvml function that produced them, converted to
plain JSON types (ctypes structures become dicts with their field names).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verify import __version__, frameworks, pcie

SNAPSHOT_FORMAT = "labrig.snapshot/1"

PROC_MODULES = Path("/proc/modules")
PROC_DRIVER_VERSION = Path("/proc/driver/nvidia/version")
OS_RELEASE = Path("/etc/os-release")
SYSFS_PCI_DEVICES = Path("/sys/bus/pci/devices")
KERNEL_LOG_TIMEOUT_S = 30

# nvidia-smi is asked for the same facts NVML gives, through the tool admins know: when the two
# disagree, or only nvidia-smi fails, the driver install is broken in a way NVML alone hides.
SMI_QUERY_FIELDS = (
    "index",
    "name",
    "driver_version",
    "pci.bus_id",
    "memory.total",
    "persistence_mode",
    "pcie.link.width.current",
    "pcie.link.width.max",
    "temperature.gpu",
)
SMI_TIMEOUT_S = 60

# Per-GPU NVML queries: snapshot key -> (pynvml function name, constant names passed after the
# handle). The key is the function name, plus ":ARG" where the same function is asked twice.
GPU_QUERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "nvmlDeviceGetName": ("nvmlDeviceGetName", ()),
    "nvmlDeviceGetUUID": ("nvmlDeviceGetUUID", ()),
    "nvmlDeviceGetPciInfo_v3": ("nvmlDeviceGetPciInfo_v3", ()),
    "nvmlDeviceGetCudaComputeCapability": ("nvmlDeviceGetCudaComputeCapability", ()),
    "nvmlDeviceGetMemoryInfo": ("nvmlDeviceGetMemoryInfo", ()),
    "nvmlDeviceGetEccMode": ("nvmlDeviceGetEccMode", ()),
    "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE": (
        "nvmlDeviceGetTotalEccErrors",
        ("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
    ),
    "nvmlDeviceGetRetiredPagesPendingStatus": ("nvmlDeviceGetRetiredPagesPendingStatus", ()),
    "nvmlDeviceGetRemappedRows": ("nvmlDeviceGetRemappedRows", ()),
    "nvmlDeviceGetCurrPcieLinkWidth": ("nvmlDeviceGetCurrPcieLinkWidth", ()),
    "nvmlDeviceGetMaxPcieLinkWidth": ("nvmlDeviceGetMaxPcieLinkWidth", ()),
    "nvmlDeviceGetCurrPcieLinkGeneration": ("nvmlDeviceGetCurrPcieLinkGeneration", ()),
    "nvmlDeviceGetMaxPcieLinkGeneration": ("nvmlDeviceGetMaxPcieLinkGeneration", ()),
    "nvmlDeviceGetPersistenceMode": ("nvmlDeviceGetPersistenceMode", ()),
    "nvmlDeviceGetTemperature:GPU": ("nvmlDeviceGetTemperature", ("NVML_TEMPERATURE_GPU",)),
    "nvmlDeviceGetTemperatureThreshold:SLOWDOWN": (
        "nvmlDeviceGetTemperatureThreshold",
        ("NVML_TEMPERATURE_THRESHOLD_SLOWDOWN",),
    ),
    "nvmlDeviceGetTemperatureThreshold:SHUTDOWN": (
        "nvmlDeviceGetTemperatureThreshold",
        ("NVML_TEMPERATURE_THRESHOLD_SHUTDOWN",),
    ),
    "nvmlDeviceGetCurrentClocksEventReasons": ("nvmlDeviceGetCurrentClocksEventReasons", ()),
    "nvmlDeviceGetPowerUsage": ("nvmlDeviceGetPowerUsage", ()),
    "nvmlDeviceGetEnforcedPowerLimit": ("nvmlDeviceGetEnforcedPowerLimit", ()),
    "nvmlDeviceGetComputeRunningProcesses": ("nvmlDeviceGetComputeRunningProcesses", ()),
    "nvmlDeviceGetMigMode": ("nvmlDeviceGetMigMode", ()),
    # For the reports: what identifies the card to a lab and to its vendor.
    "nvmlDeviceGetSerial": ("nvmlDeviceGetSerial", ()),
    "nvmlDeviceGetVbiosVersion": ("nvmlDeviceGetVbiosVersion", ()),
    # Lifetime counts, judged against NVIDIA's RMA limits, not only the pending flags.
    "nvmlDeviceGetTotalEccErrors:UNCORRECTED:AGGREGATE": (
        "nvmlDeviceGetTotalEccErrors",
        ("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_AGGREGATE_ECC"),
    ),
    "nvmlDeviceGetRetiredPages_v2:MULTIPLE_SINGLE_BIT_ECC_ERRORS": (
        "nvmlDeviceGetRetiredPages_v2",
        ("NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS",),
    ),
    "nvmlDeviceGetRetiredPages_v2:DOUBLE_BIT_ECC_ERROR": (
        "nvmlDeviceGetRetiredPages_v2",
        ("NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR",),
    ),
    "nvmlDeviceGetRowRemapperHistogram": ("nvmlDeviceGetRowRemapperHistogram", ()),
    # The card's own maximum; nvmlDeviceGetMaxPcieLinkGeneration is already capped by the host.
    "nvmlDeviceGetGpuMaxPcieLinkGeneration": ("nvmlDeviceGetGpuMaxPcieLinkGeneration", ()),
    # Whether the GPU was busy: a link or a slowdown is judged only under load.
    "nvmlDeviceGetUtilizationRates": ("nvmlDeviceGetUtilizationRates", ()),
    "nvmlDeviceGetPerformanceState": ("nvmlDeviceGetPerformanceState", ()),
}

SYSTEM_QUERIES = (
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount",
)


def to_json_value(raw: Any) -> Any:
    """Turn what pynvml returns (ctypes structures, friendly objects, bytes) into JSON types."""
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    if isinstance(raw, str | int | float | bool) or raw is None:
        return raw
    if isinstance(raw, ctypes.Structure):
        return {name: to_json_value(getattr(raw, name)) for name, *_ in raw._fields_}
    if isinstance(raw, list | tuple | ctypes.Array):
        return [to_json_value(item) for item in raw]
    if isinstance(raw, dict):
        return {str(key): to_json_value(value) for key, value in raw.items()}
    if hasattr(raw, "__dict__"):
        # pynvml's nvmlFriendlyObject (process lists) keeps the struct fields as attributes.
        return {key: to_json_value(value) for key, value in vars(raw).items()}
    return repr(raw)


def outcome(call: Callable[[], Any]) -> dict[str, Any]:
    """Run one query; keep its value or the exception's class name and message."""
    try:
        return {"value": to_json_value(call())}
    except Exception as exc:  # every failure is a fact worth recording, not a crash
        return {"error": type(exc).__name__, "message": str(exc)}


def read_os_release(path: Path = OS_RELEASE) -> str | None:
    """The release's own name ("Debian GNU/Linux 13 (trixie)"): a migrating fleet runs several."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if sep:
            fields[key.strip()] = raw.strip().strip("'\"")
    name = fields.get("PRETTY_NAME") or " ".join(
        part for part in (fields.get("NAME"), fields.get("VERSION_ID")) if part
    )
    return name or None


def read_modules(path: Path = PROC_MODULES) -> dict[str, Any]:
    def names() -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return sorted(line.split()[0] for line in lines if line.strip())

    return outcome(names)


_KERNEL_MODULE_VERSION = re.compile(r"Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s")


def parse_kernel_module_version(text: str) -> str | None:
    """The NVIDIA kernel module's version from /proc/driver/nvidia/version (proprietary or open)."""
    match = _KERNEL_MODULE_VERSION.search(text + " ")
    return match.group(1) if match else None


def read_driver_version_file(path: Path = PROC_DRIVER_VERSION) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        text = path.read_text(encoding="utf-8")
        return {"text": text, "kernel_module_version": parse_kernel_module_version(text)}

    return outcome(read)


def loaded_nvml_library() -> dict[str, Any]:
    """The file libnvidia-ml.so.1 resolved to in this process.

    Its name carries the userspace driver version even when nvmlInit refuses to start because the
    kernel module is another version, which is how the mismatch is named with both versions.
    """

    def find() -> str | None:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8")
        for line in maps.splitlines():
            fields = line.split()
            if len(fields) >= 6 and "libnvidia-ml.so" in fields[-1]:
                return os.path.realpath(fields[-1])
        return None

    return outcome(find)


def sysfs_name(bus_id: str) -> str:
    """NVML's '00000000:01:00.0' as Linux names the device: '0000:01:00.0'."""
    domain, bus, rest = bus_id.lower().split(":")
    return f"{int(domain, 16):04x}:{bus}:{rest}"


def read_pcie_host(bus_id: str, devices: Path = SYSFS_PCI_DEVICES) -> dict[str, Any]:
    """The most the port above the GPU (root port or switch) supports: the slot's side of the
    link, which NVML does not report (its maximum width is the card's)."""

    def read() -> dict[str, Any]:
        port = (devices / sysfs_name(bus_id)).resolve().parent
        speed = (port / "max_link_speed").read_text(encoding="utf-8").strip()
        width = int((port / "max_link_width").read_text(encoding="utf-8").strip())
        return {
            "max_gen": pcie.gen_from_speed(speed),
            "max_width": width,
            "source": f"sysfs {port.name}",
        }

    return outcome(read)


# journalctl first: its kernel log is complete since boot, dmesg's ring buffer may have wrapped.
KERNEL_LOG_SOURCES = (
    (["journalctl", "-k", "-b", "--no-pager", "-o", "short-iso"], "journalctl -k -b"),
    (["dmesg"], "dmesg"),
)


def read_kernel_log(timeout_s: float = KERNEL_LOG_TIMEOUT_S) -> dict[str, Any]:
    """The NVRM Xid lines of the kernel log since boot, read without root where the host allows
    it; otherwise why not (journal groups, kernel.dmesg_restrict)."""
    why = []
    for argv, source in KERNEL_LOG_SOURCES:
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            why.append(f"{source}: {type(exc).__name__}: {exc}")
            continue
        # journalctl's own remarks ("-- No entries --", "-- Boot ... --") are not log lines.
        lines = [line for line in proc.stdout.splitlines() if not line.startswith("-- ")]
        said = (proc.stderr.strip().splitlines() or [""])[0]
        if proc.returncode != 0:
            why.append(f"{source} exited {proc.returncode}: {said}")
            continue
        if not lines:
            # A boot always logs kernel lines: none means this user may not read them.
            why.append(f"{source} showed no kernel line (no permission?) {said}".strip())
            continue
        xids = [line for line in lines if "NVRM: Xid" in line]
        return {"value": {"source": source, "lines": xids, "lines_read": len(lines)}}
    return {"error": "PermissionError", "message": "; ".join(why)}


def run_nvidia_smi_xml(timeout_s: float = SMI_TIMEOUT_S) -> tuple[str | None, str]:
    """`nvidia-smi -q -x`, kept beside a recorded snapshot: (the XML, or None, and why not)."""
    try:
        proc = subprocess.run(
            ["nvidia-smi", "-q", "-x"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        said = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        return None, f"exited {proc.returncode}: {said[0] if said else 'no output'}"
    return proc.stdout, ""


def run_nvidia_smi(timeout_s: float = SMI_TIMEOUT_S) -> dict[str, Any]:
    argv = [
        "nvidia-smi",
        "--query-gpu=" + ",".join(SMI_QUERY_FIELDS),
        "--format=csv,noheader,nounits",
    ]
    record: dict[str, Any] = {"argv": argv, "fields": list(SMI_QUERY_FIELDS)}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        record.update(error=type(exc).__name__, message=str(exc))
        return record
    record.update(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    return record


def gather_nvml(pynvml: Any = None) -> dict[str, Any]:
    """Everything NVML says about the system and each GPU; `pynvml` is injectable for tests."""
    if pynvml is None:
        try:
            # A missing nvidia-ml-py is a fact to record, not a crash.
            import pynvml
        except ImportError as exc:
            return {"nvmlInit": {"error": type(exc).__name__, "message": str(exc)}, "gpus": []}
    nvml: dict[str, Any] = {"nvmlInit": outcome(pynvml.nvmlInit)}
    nvml["library_file"] = loaded_nvml_library()
    if "error" in nvml["nvmlInit"]:
        nvml["gpus"] = []
        return nvml
    try:
        for name in SYSTEM_QUERIES:
            nvml[name] = outcome(getattr(pynvml, name))
        nvml["gpus"] = []
        count = nvml["nvmlDeviceGetCount"].get("value") or 0
        for index in range(count):
            nvml["gpus"].append(_gather_gpu(pynvml, index))
    finally:
        outcome(pynvml.nvmlShutdown)
    return nvml


def _gather_gpu(pynvml: Any, index: int) -> dict[str, Any]:
    gpu: dict[str, Any] = {"index": index}
    try:
        device = pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception as exc:
        gpu["nvmlDeviceGetHandleByIndex"] = {"error": type(exc).__name__, "message": str(exc)}
        return gpu
    for key, (function_name, constant_names) in GPU_QUERIES.items():
        function = getattr(pynvml, function_name, None)
        if function is None:
            gpu[key] = {"error": "AttributeError", "message": f"pynvml has no {function_name}"}
            continue
        args = [getattr(pynvml, constant) for constant in constant_names]
        gpu[key] = outcome(lambda function=function, args=args: function(device, *args))
    bus_id = (gpu["nvmlDeviceGetPciInfo_v3"].get("value") or {}).get("busId")
    if bus_id:
        gpu["pcie_host"] = read_pcie_host(bus_id)
    if gpu["nvmlDeviceGetCurrentClocksEventReasons"].get("error") == "NVMLError_FunctionNotFound":
        # Drivers before 535 only have the older name for the same bit mask.
        gpu["nvmlDeviceGetCurrentClocksThrottleReasons"] = outcome(
            lambda: pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(device)
        )
    return gpu


def probe_framework(framework: str) -> dict[str, Any]:
    """The framework adapter's probe; a broken adapter is recorded like a failed import."""
    try:
        return dict(frameworks.get_adapter(framework).probe())
    except Exception as exc:
        return frameworks.not_probed(framework, f"{type(exc).__name__}: {exc}")


def gather(
    framework: str = frameworks.DEFAULT_FRAMEWORK,
    *,
    pynvml: Any = None,
    probe: Callable[[str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Record the whole snapshot. NVML is read before the framework loads CUDA in-process."""
    snapshot: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "labrig_version": __version__,
        "host": socket.gethostname(),
        "kernel": platform.release(),
        "os_release": read_os_release(),
        "python": platform.python_version(),
        "pid": os.getpid(),
        "modules": read_modules(),
        "driver_version_file": read_driver_version_file(),
        "kernel_log": read_kernel_log(),
        "nvml": gather_nvml(pynvml),
        "nvidia_smi": run_nvidia_smi(),
    }
    snapshot["framework"] = (probe or probe_framework)(framework)
    return snapshot


class SnapshotError(Exception):
    """A snapshot file that cannot be used: the suite cannot run (exit 2)."""


REQUIRED_KEYS = ("format", "host", "modules", "driver_version_file", "nvml", "nvidia_smi")


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path} is not a {SNAPSHOT_FORMAT} snapshot")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise SnapshotError(f"snapshot {path} lacks {', '.join(missing)}")
    data.setdefault("framework", {})
    return data


def save(snapshot: dict[str, Any], path: str | os.PathLike[str]) -> None:
    Path(path).write_text(json.dumps(snapshot, indent=2) + "\n", encoding="utf-8")
