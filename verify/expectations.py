"""What the host is expected to be: merged from the roles' YAML files, `--expect` files, flags.

Order (later wins, key by key): `<expectations-dir>/*.yml|*.yaml` in lexical order, then each
`--expect FILE` in the order given, then command-line flags. Every key is optional: a check whose
expectation is absent is skipped, never passed. Keys are documented in verify/README.md and
verify/CONTRACTS.md.

The tunables (margins, thresholds) have documented defaults and are read through `setting`, the
one place both the host checks and the workload checks get them from. A tunable may loosen its
check but never switch it off: `perf_floor_scale` and `mlp_min_accuracy` must be above 0, since
0 would pass any measurement; `--skip` is the way not to judge a thing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from verify.frameworks import FRAMEWORKS

DEFAULT_DIR = Path("/etc/labrig/expectations.d")
DEFAULTS: dict[str, Any] = {
    "temperature_margin_c": 5,
    "mlp_min_accuracy": 0.97,
    "mlp_samples": 50,
    "perf_floor_scale": 1.0,
}


class ExpectationsError(ValueError):
    """An expectations source that cannot be used: the suite cannot run (exit 2)."""


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExpectationsError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExpectationsError(f"{key} must be a positive integer, got {value!r}")
    return value


def _positive_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ExpectationsError(f"{key} must be a positive number, got {value!r}")
    return float(value)


def _version(value: Any, key: str) -> str:
    # YAML reads an unquoted 11.2 as a float; its text is still the version that was meant.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ExpectationsError(f"{key} must be a version string, got {value!r}")
    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        raise ExpectationsError(f"{key} must look like 11.2 or 535.216.03, got {value!r}")
    return text


def _framework(value: Any, key: str) -> str:
    if value not in FRAMEWORKS:
        raise ExpectationsError(f"{key} must be one of {', '.join(FRAMEWORKS)}, got {value!r}")
    return value


def _features(value: Any, key: str) -> dict[str, bool]:
    if not isinstance(value, dict) or not all(
        isinstance(name, str) and isinstance(flag, bool) for name, flag in value.items()
    ):
        raise ExpectationsError(f"{key} must map feature names to true/false, got {value!r}")
    return {name.upper(): flag for name, flag in value.items()}


def _archs(value: Any, key: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ExpectationsError(f"{key} must be a non-empty list of SM numbers like 86")
    return [_int(arch, key) for arch in value]


def _names(value: Any, key: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ExpectationsError(f"{key} must be a GPU name or a list of GPU names")
    return names


def _accuracy(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ExpectationsError(f"{key} must be above 0 and at most 1, got {value!r}")
    return float(value)


VALIDATORS = {
    "gpu_count": _int,
    "driver_version": _version,
    "framework": _framework,
    "mxnet_features": _features,
    "mxnet_cuda_archs": _archs,
    "min_cuda_driver_version": _version,
    "gpu_models": _names,
    "temperature_margin_c": _int,
    "mlp_min_accuracy": _accuracy,
    "mlp_samples": _positive_int,
    "perf_floor_scale": _positive_number,
}


def validate(data: dict[str, Any], source: str, *, warn=None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in data.items():
        validator = VALIDATORS.get(key)
        if validator is None:
            # Inventories may carry keys for newer checks: tolerate them, but say so, since a
            # typo here would otherwise silently skip a check.
            print(f"verify: {source}: unknown expectation {key!r} ignored", file=warn or sys.stderr)
            continue
        if value is None:
            continue
        try:
            clean[key] = validator(value, key)
        except ExpectationsError as exc:
            raise ExpectationsError(f"{source}: {exc}") from None
    return clean


def read_file(path: Path, *, warn=None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExpectationsError(f"cannot read expectations file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ExpectationsError(f"{path}{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ExpectationsError(f"{path}: expected a mapping of keys to values")
    return validate(data, str(path), warn=warn)


def load(
    directory: Path | None = DEFAULT_DIR,
    files: Iterable[Path] = (),
    overrides: dict[str, Any] | None = None,
    *,
    warn=None,
) -> dict[str, Any]:
    """Merged expectations, without defaults (absent stays absent: the check is skipped)."""
    merged: dict[str, Any] = {}
    if directory is not None and directory.is_dir():
        found = [p for p in directory.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()]
        for path in sorted(found, key=lambda p: p.name):
            merged.update(read_file(path, warn=warn))
    for path in files:
        merged.update(read_file(Path(path), warn=warn))
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    merged.update(validate(given, "command line", warn=warn))
    return merged


def setting(expectations: dict[str, Any], key: str) -> Any:
    """A tunable's value, else its documented default.

    Validated again here: the workloads can be handed expectations that never went through
    `load`, and a bad value must fail the check that reads it, naming the key.
    """
    given = expectations.get(key)
    if given is None:
        return DEFAULTS[key]
    try:
        return VALIDATORS[key](given, key)
    except ExpectationsError as exc:
        raise ValueError(f"expectation {exc}") from None
