"""Driver checks: the kernel modules, NVML, nvidia-smi and the versions that must agree."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from verify.checks.common import (
    NO_EXPECTATION,
    CheckSpec,
    describe,
    failed_outcome,
    nvml_unavailable,
    result,
    value,
)
from verify.result import CheckResult, Severity, Status

REQUIRED = Severity.REQUIRED

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


def _modules(snapshot: dict[str, Any]) -> tuple[list[str] | None, str]:
    modules = snapshot["modules"]
    if "error" in modules:
        return None, f"cannot read /proc/modules ({modules['error']}: {modules.get('message')})"
    return modules["value"], ""


def nouveau(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.nouveau"
    modules, why = _modules(snapshot)
    if modules is None:
        return [result(check_id, Status.FAILED, why, REQUIRED)]
    if "nouveau" in modules:
        return [
            result(
                check_id,
                Status.FAILED,
                "nouveau is loaded: it holds the GPUs, the NVIDIA driver cannot bind them",
                REQUIRED,
            )
        ]
    return [result(check_id, Status.PASSED, "nouveau not loaded", REQUIRED)]


def nvidia_module(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.nvidia_module"
    modules, why = _modules(snapshot)
    if modules is None:
        return [result(check_id, Status.FAILED, why, REQUIRED)]
    nvidia = sorted(name for name in modules if name == "nvidia" or name.startswith("nvidia_"))
    if "nvidia" not in modules:
        return [result(check_id, Status.FAILED, "nvidia kernel module not loaded", REQUIRED)]
    return [result(check_id, Status.PASSED, "nvidia module loaded", REQUIRED, modules=nvidia)]


def nvml_init(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.nvml"
    init = snapshot["nvml"].get("nvmlInit", {})
    if "error" in init:
        return [result(check_id, Status.FAILED, f"NVML: {describe(init)}", REQUIRED)]
    version = value(snapshot["nvml"].get("nvmlSystemGetNVMLVersion"))
    count = value(snapshot["nvml"].get("nvmlDeviceGetCount"))
    return [
        result(
            check_id,
            Status.PASSED,
            f"NVML {version} initialised, {count} GPU(s)",
            REQUIRED,
            nvml_version=version,
            gpu_count=count,
        )
    ]


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


def nvidia_smi(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.nvidia_smi"
    smi = snapshot["nvidia_smi"]
    if "error" in smi:
        return [
            result(check_id, Status.FAILED, f"nvidia-smi did not run: {smi['error']}", REQUIRED)
        ]
    code = smi["returncode"]
    if code != 0:
        said = (smi.get("stdout") or "").strip() or (smi.get("stderr") or "").strip()
        first_line = said.splitlines()[0] if said else ""
        if "version mismatch" in said.lower():
            meaning = "Driver/library version mismatch"
        else:
            meaning = SMI_EXIT_MEANING.get(code, first_line or "no output")
        return [
            result(
                check_id,
                Status.FAILED,
                f"nvidia-smi exited {code}: {meaning}",
                REQUIRED,
                output=first_line,
            )
        ]
    try:
        rows = parse_smi_csv(smi.get("stdout", ""), smi["fields"])
    except ValueError as exc:
        return [result(check_id, Status.FAILED, f"nvidia-smi CSV does not parse: {exc}", REQUIRED)]
    count = value(snapshot["nvml"].get("nvmlDeviceGetCount"))
    if count is not None and len(rows) != count:
        return [
            result(
                check_id,
                Status.FAILED,
                f"nvidia-smi lists {len(rows)} GPU(s), NVML {count}",
                REQUIRED,
            )
        ]
    driver = rows[0].get("driver_version") if rows else None
    return [
        result(
            check_id,
            Status.PASSED,
            f"nvidia-smi lists {len(rows)} GPU(s)",
            REQUIRED,
            gpu_count=len(rows),
            driver_version=driver,
        )
    ]


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


def version_match(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.version_match"
    kernel = kernel_module_version(snapshot)
    library = library_version(snapshot)
    init_error = snapshot["nvml"].get("nvmlInit", {}).get("error")
    versions = {"kernel_module": kernel, "nvml_library": library}
    if init_error == "NVMLError_LibRmVersionMismatch" or (kernel and library and kernel != library):
        return [
            result(
                check_id,
                Status.FAILED,
                f"Driver/library version mismatch: kernel module {kernel or '?'}, "
                f"NVML library {library or '?'} (reboot, or reload the nvidia modules)",
                REQUIRED,
                **versions,
            )
        ]
    if kernel is None:
        proc = snapshot["driver_version_file"]
        why = (
            f"{proc['error']}: {proc.get('message')}"
            if "error" in proc
            else "no version in the text"
        )
        return [
            result(
                check_id,
                Status.FAILED,
                f"kernel module version unknown (/proc/driver/nvidia/version: {why})",
                REQUIRED,
                **versions,
            )
        ]
    if library is None:
        why = nvml_unavailable(snapshot) or "NVML gave no driver version"
        return [result(check_id, Status.FAILED, f"NVML library version unknown: {why}", REQUIRED)]
    return [
        result(
            check_id,
            Status.PASSED,
            f"kernel module and NVML library are both {kernel}",
            REQUIRED,
            **versions,
        )
    ]


def pinned_version(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.version"
    expected = expectations.get("driver_version")
    if expected is None:
        return [result(check_id, Status.SKIPPED, NO_EXPECTATION, REQUIRED)]
    found = value(snapshot["nvml"].get("nvmlSystemGetDriverVersion"))
    if found is None:
        why = nvml_unavailable(snapshot) or "NVML gave no driver version"
        return [result(check_id, Status.FAILED, why, REQUIRED, expected=expected)]
    if found != expected:
        return [
            result(
                check_id,
                Status.FAILED,
                f"driver {found}, expected {expected}",
                REQUIRED,
                expected=expected,
                found=found,
            )
        ]
    return [result(check_id, Status.PASSED, f"driver {found} as pinned", REQUIRED, found=found)]


def cuda_version_text(encoded: int) -> str:
    """NVML's CUDA driver API version, e.g. 12020 -> '12.2'."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def cuda_driver(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "driver.cuda_version"
    # The driver must run the CUDA runtime the framework was built with; an explicit
    # expectation (what the wheel documents) wins over what the framework reports.
    needed = expectations.get("min_cuda_driver_version")
    source = "expected"
    if needed is None:
        needed = (snapshot.get("framework") or {}).get("cuda_version")
        source = f"{(snapshot.get('framework') or {}).get('name', 'framework')} built with"
    if not needed:
        return [result(check_id, Status.SKIPPED, NO_EXPECTATION, REQUIRED)]
    outcome = snapshot["nvml"].get("nvmlSystemGetCudaDriverVersion_v2")
    if failed_outcome(outcome):
        why = nvml_unavailable(snapshot) or f"NVML: {describe(outcome or {})}"
        return [result(check_id, Status.FAILED, why, REQUIRED, needed=needed)]
    found = cuda_version_text(outcome["value"])
    measured = {"cuda_driver": found, "needed": needed}
    if _version_tuple(found) < _version_tuple(needed):
        return [
            result(
                check_id,
                Status.FAILED,
                f"driver supports CUDA {found}, {source} {needed}",
                REQUIRED,
                **measured,
            )
        ]
    return [
        result(
            check_id,
            Status.PASSED,
            f"driver supports CUDA {found} >= {needed} ({source})",
            REQUIRED,
            **measured,
        )
    ]


CHECKS = [
    CheckSpec("driver.nouveau", REQUIRED, True, "nouveau is not loaded", nouveau),
    CheckSpec("driver.nvidia_module", REQUIRED, True, "nvidia kernel module loaded", nvidia_module),
    CheckSpec("driver.nvml", REQUIRED, True, "NVML initialises", nvml_init),
    CheckSpec("driver.nvidia_smi", REQUIRED, True, "nvidia-smi runs, CSV parses", nvidia_smi),
    CheckSpec(
        "driver.version_match",
        REQUIRED,
        True,
        "kernel module version == NVML library version",
        version_match,
    ),
    CheckSpec("driver.version", REQUIRED, True, "driver == driver_version", pinned_version),
    CheckSpec(
        "driver.cuda_version",
        REQUIRED,
        True,
        "CUDA driver API >= min_cuda_driver_version (else the framework's CUDA)",
        cuda_driver,
    ),
]
