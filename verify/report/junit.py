"""JUnit XML, one scheme for the per-host report (`--junit`) and fleet.junit.xml.

A `testsuite` per host, named after it; a `testcase` per check per GPU with classname `<host>`
and name `<check id>[gpu<N>]` (the check id alone for a host-level result), so CI dashboards show
each GPU's checks under its machine. `failure` / `error` are the blocking results only, so the
XML agrees with the exit code: an advisory finding is a passing testcase whose system-out starts
with `advisory failed:`. Each testcase carries `severity`, `status`, `measurements` and
`framework` as properties; a GPU's testcases also name the card (`gpu_name`, `gpu_uuid`,
`gpu_serial`, `gpu_vbios`, `gpu_pci_bus_id`, `driver`, `link_current`, `link_max`) from the
report's GPU inventory, so a CI dashboard shows which physical card failed.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from verify.outcome import RunInfo
from verify.result import CheckResult, Severity, Status


def testcase_name(item: CheckResult) -> str:
    return item.check_id if item.gpu is None else f"{item.check_id}[gpu{item.gpu}]"


# Inventory key (verify/report/json_report.py gpu_inventory) -> testcase property.
GPU_PROPERTIES = (
    ("name", "gpu_name"),
    ("uuid", "gpu_uuid"),
    ("serial", "gpu_serial"),
    ("vbios", "gpu_vbios"),
    ("pci_bus_id", "gpu_pci_bus_id"),
    ("driver", "driver"),
)


def _gpu_properties(properties: ET.Element, gpu: dict[str, Any]) -> None:
    for key, name in GPU_PROPERTIES:
        if gpu.get(key) is not None:
            ET.SubElement(properties, "property", name=name, value=str(gpu[key]))
    for key in ("current", "max"):
        value = (gpu.get("link") or {}).get(key)
        if value:
            ET.SubElement(properties, "property", name=f"link_{key}", value=value)


def add_testcase(
    suite: ET.Element,
    item: CheckResult,
    *,
    host: str,
    gpus: dict[int, dict[str, Any]] | None = None,
) -> ET.Element:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=host,
        name=testcase_name(item),
        time=f"{item.duration_s:.6f}",
    )
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="severity", value=item.severity.value)
    ET.SubElement(properties, "property", name="status", value=item.status.value)
    if item.measurements:
        measured = json.dumps(item.measurements, sort_keys=True, default=str)
        ET.SubElement(properties, "property", name="measurements", value=measured)
    if item.framework:
        framework = json.dumps(item.framework, sort_keys=True)
        ET.SubElement(properties, "property", name="framework", value=framework)
    if item.gpu is not None and gpus and item.gpu in gpus:
        _gpu_properties(properties, gpus[item.gpu])
    if item.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=item.reason)
    elif item.blocking and item.status is Status.FAILED:
        ET.SubElement(case, "failure", message=item.reason, type="failed").text = item.reason
    elif item.blocking:
        ET.SubElement(case, "error", message=item.reason, type="error").text = item.reason
    elif item.severity is Severity.ADVISORY and item.status is not Status.PASSED:
        ET.SubElement(case, "system-out").text = f"advisory {item.status.value}: {item.reason}"
    else:
        ET.SubElement(case, "system-out").text = item.reason
    return case


def add_suite(
    parent: ET.Element,
    results: Iterable[CheckResult],
    *,
    host: str,
    gpus: list[dict[str, Any]] | None = None,
    **attributes: str,
) -> ET.Element:
    """A host's testsuite with its counts; `gpus` is the report's GPU inventory; `attributes`
    adds timestamp, id and the like."""
    suite = ET.SubElement(parent, "testsuite", name=host, **attributes)
    results = list(results)
    by_index = {gpu.get("index"): gpu for gpu in gpus or []}
    for item in results:
        add_testcase(suite, item, host=host, gpus=by_index)
    tally = {
        "tests": len(results),
        "failures": sum(1 for r in results if r.blocking and r.status is Status.FAILED),
        "errors": sum(1 for r in results if r.blocking and r.status is Status.ERROR),
        "skipped": sum(1 for r in results if r.status is Status.SKIPPED),
    }
    for key, count in tally.items():
        suite.set(key, str(count))
    suite.set("time", f"{sum(r.duration_s for r in results):.3f}")
    return suite


def build(
    results: list[CheckResult], run: RunInfo, gpus: list[dict[str, Any]] | None = None
) -> ET.Element:
    suites = ET.Element("testsuites", name="labrig.verify")
    suite = add_suite(
        suites, results, host=run.host, gpus=gpus, hostname=run.host, timestamp=run.started
    )
    # The wall time of the run, not the sum of the checks: gathering the facts counts too.
    suite.set("time", f"{run.duration_s:.3f}")
    return suites


def to_xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(
    results: list[CheckResult],
    path: str | os.PathLike[str],
    run: RunInfo,
    gpus: list[dict[str, Any]] | None = None,
) -> None:
    root = build(results, run, gpus)
    Path(path).write_text(to_xml(root), encoding="utf-8")
