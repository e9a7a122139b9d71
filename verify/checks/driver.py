"""Driver checks: the kernel modules, NVML, nvidia-smi and the versions that must agree."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from verify.checks.common import (
    NO_EXPECTATION,
    describe,
    failed_outcome,
    not_recorded,
    nvml_unavailable,
)
from verify.registry import Judgement, check, fail, ok, skip
from verify.values import cuda_version_text, value

# nvidia-smi's documented exit codes, in the words a lab admin searches for.
SMI_EXIT_MEANING = {
    2: "invalid argument",
    3: "the requested operation is not available",
    4: "insufficient permissions",
    6: "the query was unsuccessful",
    8: "external power cables are not attached",
    9: "couldn't communicate with the NVIDIA driver",
    10: "NVIDIA kernel detected an interrupt issue with a GPU",
    12: "NVML shared library couldn't be found or loaded",
    14: "the infoROM is corrupted",
    15: "a GPU has fallen off the bus",
}


def _modules(snapshot: dict[str, Any]) -> tuple[list[str] | None, Judgement | None]:
    modules = snapshot.get("modules")
    if not_recorded(modules):
        return None, skip(describe(modules))
    if not modules or "error" in modules or not isinstance(modules.get("value"), list):
        why = f"{modules['error']}: {modules.get('message')}" if modules else "not in the snapshot"
        return None, fail(f"cannot read /proc/modules ({why})")
    return modules["value"], None


@check("driver.nouveau", description="nouveau is not loaded")
def nouveau(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    modules, why = _modules(snapshot)
    if modules is None:
        return why
    if "nouveau" in modules:
        return fail("nouveau is loaded: it holds the GPUs, the NVIDIA driver cannot bind them")
    return ok("nouveau not loaded")


@check("driver.nvidia_module", description="nvidia kernel module loaded")
def nvidia_module(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    modules, why = _modules(snapshot)
    if modules is None:
        return why
    nvidia = sorted(name for name in modules if name == "nvidia" or name.startswith("nvidia_"))
    if "nvidia" not in modules:
        return fail("nvidia kernel module not loaded")
    return ok("nvidia module loaded", modules=nvidia)


@check("driver.nvml", description="NVML initialises")
def nvml_init(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    nvml = snapshot.get("nvml") or {}
    init = nvml.get("nvmlInit")
    if not init or ("error" not in init and "value" not in init):
        return fail("NVML: nvmlInit not in the snapshot: nothing shows NVML works")
    if "error" in init:
        return fail(f"NVML: {describe(init)}")
    count = value(nvml.get("nvmlDeviceGetCount"))
    if not isinstance(count, int):
        why = describe(nvml.get("nvmlDeviceGetCount") or {"error": "not in the snapshot"})
        return fail(f"NVML initialised but cannot count GPUs: {why}")
    version = value(nvml.get("nvmlSystemGetNVMLVersion"))
    if nvml.get("via"):
        return ok(
            f"NVML answered {nvml['via']} (an NVML client): {count} GPU(s)",
            nvml_version=version,
            gpu_count=count,
        )
    return ok(f"NVML {version} initialised, {count} GPU(s)", nvml_version=version, gpu_count=count)


def parse_smi_csv(stdout: str, fields: list[str]) -> list[dict[str, str]]:
    """Rows of `--format=csv,noheader,nounits` output; ValueError when it is not that."""
    rows = []
    for row in csv.reader(io.StringIO(stdout), skipinitialspace=True):
        if not row:
            continue
        if len(row) != len(fields):
            raise ValueError(f"expected {len(fields)} columns, got {len(row)}: {','.join(row)}")
        rows.append(dict(zip(fields, (cell.strip() for cell in row), strict=True)))
    return rows


def _smi_exit(smi: dict[str, Any]) -> Judgement:
    code = smi["returncode"]
    said = (smi.get("stdout") or "").strip() or (smi.get("stderr") or "").strip()
    first_line = said.splitlines()[0] if said else ""
    if "version mismatch" in said.lower():
        meaning = "Driver/library version mismatch"
    else:
        meaning = SMI_EXIT_MEANING.get(code, first_line or "no output")
    return fail(f"nvidia-smi exited {code}: {meaning}", output=first_line)


@check("driver.nvidia_smi", description="nvidia-smi runs, CSV parses")
def nvidia_smi(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    smi = snapshot.get("nvidia_smi")
    if not smi:
        return fail("nvidia-smi: not in the snapshot")
    if "error" in smi:
        return fail(f"nvidia-smi did not run: {smi['error']}")
    if smi.get("returncode") != 0:
        return _smi_exit(smi)
    if smi.get("format") == "xml":
        return _smi_dump(smi)
    try:
        rows = parse_smi_csv(smi.get("stdout") or "", smi["fields"])
    except (KeyError, ValueError) as exc:
        return fail(f"nvidia-smi CSV does not parse: {exc}")
    count = value(snapshot["nvml"].get("nvmlDeviceGetCount"))
    if not rows:
        return fail("nvidia-smi lists no GPU")
    if count is not None and len(rows) != count:
        return fail(f"nvidia-smi lists {len(rows)} GPU(s), NVML {count}")
    driver = rows[0].get("driver_version") if rows else None
    return ok(f"nvidia-smi lists {len(rows)} GPU(s)", gpu_count=len(rows), driver_version=driver)


def _smi_dump(smi: dict[str, Any]) -> Judgement:
    """A recorded `nvidia-smi -q -x`: it ran; a dump of one GPU (-i) may name more attached."""
    listed, attached = smi.get("gpu_count") or 0, smi.get("attached_gpus")
    measured = {
        "gpu_count": listed,
        "attached_gpus": attached,
        "driver_version": smi.get("driver_version"),
    }
    if not listed:
        return fail("the nvidia-smi dump lists no GPU", **measured)
    of = f" of {attached} attached" if attached not in (None, listed) else ""
    return ok(
        f"nvidia-smi -q -x lists {listed}{of} GPU(s), driver {smi.get('driver_version')}",
        **measured,
    )


_LIBRARY_VERSION = re.compile(r"libnvidia-ml\.so\.(\d+\.\d+(?:\.\d+)?)$")


def library_version(snapshot: dict[str, Any]) -> str | None:
    """The userspace driver version: from NVML, else from the library file's name."""
    from_nvml = value(snapshot["nvml"].get("nvmlSystemGetDriverVersion"))
    if from_nvml:
        return from_nvml
    path = value(snapshot["nvml"].get("library_file")) or ""
    match = _LIBRARY_VERSION.search(path)
    return match.group(1) if match else None


def kernel_module_version(snapshot: dict[str, Any]) -> str | None:
    return (value(snapshot["driver_version_file"]) or {}).get("kernel_module_version")


@check("driver.version_match", description="kernel module version == NVML library version")
def version_match(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    kernel = kernel_module_version(snapshot)
    library = library_version(snapshot)
    init_error = snapshot["nvml"].get("nvmlInit", {}).get("error")
    versions = {"kernel_module": kernel, "nvml_library": library}
    if init_error == "NVMLError_LibRmVersionMismatch" or (kernel and library and kernel != library):
        return fail(
            f"Driver/library version mismatch: kernel module {kernel or '?'}, "
            f"NVML library {library or '?'} (reboot, or reload the nvidia modules)",
            **versions,
        )
    if kernel is None:
        proc = snapshot["driver_version_file"]
        if not_recorded(proc):
            return skip(describe(proc), **versions)
        why = (
            f"{proc['error']}: {proc.get('message')}"
            if "error" in proc
            else "no version in the text"
        )
        return fail(
            f"kernel module version unknown (/proc/driver/nvidia/version: {why})", **versions
        )
    if library is None:
        why = nvml_unavailable(snapshot) or "NVML gave no driver version"
        return fail(f"NVML library version unknown: {why}")
    return ok(f"kernel module and NVML library are both {kernel}", **versions)


@check("driver.version", description="driver == driver_version")
def pinned_version(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    expected = expectations.get("driver_version")
    if expected is None:
        return skip(NO_EXPECTATION)
    found = value(snapshot["nvml"].get("nvmlSystemGetDriverVersion"))
    if found is None:
        return fail(nvml_unavailable(snapshot) or "NVML gave no driver version", expected=expected)
    if found != expected:
        return fail(f"driver {found}, expected {expected}", expected=expected, found=found)
    return ok(f"driver {found} as pinned", found=found)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@check(
    "driver.cuda_version",
    description="CUDA driver API >= min_cuda_driver_version (else the framework's CUDA)",
)
def cuda_driver(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    # The driver must run the CUDA runtime the framework was built with; an explicit
    # expectation (what the wheel documents) wins over what the framework reports.
    needed = expectations.get("min_cuda_driver_version")
    source = "expected"
    if needed is None:
        needed = (snapshot.get("framework") or {}).get("cuda_version")
        source = f"{(snapshot.get('framework') or {}).get('name', 'framework')} built with"
    if not needed:
        return skip(NO_EXPECTATION)
    outcome = snapshot["nvml"].get("nvmlSystemGetCudaDriverVersion_v2")
    if failed_outcome(outcome):
        why = nvml_unavailable(snapshot) or f"NVML: {describe(outcome or {})}"
        return fail(why, needed=needed)
    found = cuda_version_text(outcome["value"])
    measured = {"cuda_driver": found, "needed": needed}
    if _version_tuple(found) < _version_tuple(needed):
        return fail(f"driver supports CUDA {found}, {source} {needed}", **measured)
    return ok(f"driver supports CUDA {found} >= {needed} ({source})", **measured)
