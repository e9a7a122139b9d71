"""Framework build checks over the adapter's probe: import, build features, GPUs it sees."""

from __future__ import annotations

from typing import Any

from verify.checks.common import NO_EXPECTATION, CheckSpec, gpus, nvml_unavailable, result
from verify.result import CheckResult, Severity, Status

REQUIRED = Severity.REQUIRED


def _probe(snapshot: dict[str, Any]) -> dict[str, Any]:
    return snapshot.get("framework") or {}


def framework_import(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    probe = _probe(snapshot)
    name = probe.get("name", "framework")
    if probe.get("import_error") or not probe.get("version"):
        why = probe.get("import_error") or "no version reported"
        return [result("build.import", Status.FAILED, f"import {name} failed: {why}", REQUIRED)]
    return [
        result(
            "build.import",
            Status.PASSED,
            f"{name} {probe['version']} imports",
            REQUIRED,
            version=probe["version"],
            cuda_version=probe.get("cuda_version"),
        )
    ]


def features(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "build.features"
    wanted = expectations.get("mxnet_features")
    probe = _probe(snapshot)
    if not wanted:
        return [result(check_id, Status.SKIPPED, NO_EXPECTATION + " (mxnet_features)", REQUIRED)]
    if probe.get("name", "mxnet") != "mxnet":
        reason = f"mxnet_features does not apply to {probe.get('name')}"
        return [result(check_id, Status.SKIPPED, reason, REQUIRED)]
    if probe.get("import_error"):
        return [result(check_id, Status.FAILED, "mxnet does not import", REQUIRED)]
    found = probe.get("features") or {}
    wrong = []
    for feature, enabled in sorted(wanted.items()):
        actual = found.get(feature)
        if actual is None:
            wrong.append(f"{feature}: not a feature of this build")
        elif bool(actual) != enabled:
            wrong.append(
                f"{feature} is {'on' if actual else 'off'}, asked {'on' if enabled else 'off'}"
            )
    measured = {feature: found.get(feature) for feature in sorted(wanted)}
    if wrong:
        return [result(check_id, Status.FAILED, "; ".join(wrong), REQUIRED, **measured)]
    asked = ", ".join(f"{f}={'on' if on else 'off'}" for f, on in sorted(wanted.items()))
    return [result(check_id, Status.PASSED, f"build as asked: {asked}", REQUIRED, **measured)]


def num_gpus(snapshot: dict[str, Any], expectations: dict[str, Any]) -> list[CheckResult]:
    check_id = "build.num_gpus"
    probe = _probe(snapshot)
    name = probe.get("name", "framework")
    why = nvml_unavailable(snapshot)
    if why:
        return [result(check_id, Status.FAILED, why, REQUIRED)]
    if probe.get("import_error") or probe.get("num_gpus") is None:
        return [result(check_id, Status.FAILED, f"{name} could not count GPUs", REQUIRED)]
    nvml_count = len(gpus(snapshot))
    seen = probe["num_gpus"]
    measured = {"framework_gpus": seen, "nvml_gpus": nvml_count}
    if seen != nvml_count:
        return [
            result(
                check_id,
                Status.FAILED,
                f"{name} sees {seen} GPU(s), NVML {nvml_count}",
                REQUIRED,
                **measured,
            )
        ]
    return [result(check_id, Status.PASSED, f"{name} sees all {seen} GPU(s)", REQUIRED, **measured)]


CHECKS = [
    CheckSpec("build.import", REQUIRED, False, "the framework imports", framework_import),
    CheckSpec("build.features", REQUIRED, False, "Features() match mxnet_features", features),
    CheckSpec("build.num_gpus", REQUIRED, True, "framework GPU count == NVML count", num_gpus),
]
