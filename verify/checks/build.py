"""Framework build checks over the adapter's probe: import, build features, GPUs it sees."""

from __future__ import annotations

from typing import Any

from verify.checks.common import NO_EXPECTATION, describe, gpus, not_recorded, nvml_unavailable
from verify.registry import Judgement, check, fail, ok, skip


def _probe(snapshot: dict[str, Any]) -> dict[str, Any]:
    return snapshot.get("framework") or {}


def _unrecorded(snapshot: dict[str, Any]) -> Judgement | None:
    probe = _probe(snapshot)
    return skip(describe(probe)) if not_recorded(probe) else None


@check("build.import", description="the framework imports", needs_gpu=False)
def framework_import(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    if unrecorded := _unrecorded(snapshot):
        return unrecorded
    probe = _probe(snapshot)
    name = probe.get("name", "framework")
    if probe.get("import_error") or not probe.get("version"):
        why = probe.get("import_error") or "no version reported"
        return fail(f"import {name} failed: {why}")
    return ok(
        f"{name} {probe['version']} imports",
        version=probe["version"],
        cuda_version=probe.get("cuda_version"),
    )


def _on_off(enabled: Any) -> str:
    return "on" if enabled else "off"


@check("build.features", description="Features() match mxnet_features", needs_gpu=False)
def features(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    wanted = expectations.get("mxnet_features")
    probe = _probe(snapshot)
    if not wanted:
        return skip(NO_EXPECTATION + " (mxnet_features)")
    if unrecorded := _unrecorded(snapshot):
        return unrecorded
    if probe.get("name", "mxnet") != "mxnet":
        return skip(f"mxnet_features does not apply to {probe.get('name')}")
    if probe.get("import_error"):
        return fail("mxnet does not import")
    found = probe.get("features") or {}
    wrong = []
    for feature, enabled in sorted(wanted.items()):
        actual = found.get(feature)
        if actual is None:
            wrong.append(f"{feature}: not a feature of this build")
        elif bool(actual) != enabled:
            wrong.append(f"{feature} is {_on_off(actual)}, asked {_on_off(enabled)}")
    measured = {feature: found.get(feature) for feature in sorted(wanted)}
    if wrong:
        return fail("; ".join(wrong), **measured)
    asked = ", ".join(f"{f}={_on_off(on)}" for f, on in sorted(wanted.items()))
    return ok(f"build as asked: {asked}", **measured)


@check("build.num_gpus", description="framework GPU count == NVML count")
def num_gpus(snapshot: dict[str, Any], expectations: dict[str, Any]) -> Judgement:
    if unrecorded := _unrecorded(snapshot):
        return unrecorded
    probe = _probe(snapshot)
    name = probe.get("name", "framework")
    why = nvml_unavailable(snapshot)
    if why:
        return fail(why)
    if probe.get("import_error") or probe.get("num_gpus") is None:
        return fail(f"{name} could not count GPUs")
    nvml_count = len(gpus(snapshot))
    seen = probe["num_gpus"]
    measured = {"framework_gpus": seen, "nvml_gpus": nvml_count}
    if seen != nvml_count:
        return fail(f"{name} sees {seen} GPU(s), NVML {nvml_count}", **measured)
    return ok(f"{name} sees all {seen} GPU(s)", **measured)
