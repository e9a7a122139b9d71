"""JUnit XML: one testcase per check per GPU, so CI dashboards show each GPU's checks."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from verify.result import CheckResult, Severity, Status


def testcase_name(item: CheckResult) -> str:
    return item.check_id if item.gpu is None else f"{item.check_id}[gpu{item.gpu}]"


def build(results: list[CheckResult], *, host: str, started: str, duration_s: float) -> ET.Element:
    # Advisory findings are not JUnit failures: the XML must agree with the exit code. They are
    # kept visible in system-out and the severity property.
    failures = sum(1 for r in results if r.status is Status.FAILED and r.blocking)
    errors = sum(1 for r in results if r.status is Status.ERROR and r.blocking)
    skipped = sum(1 for r in results if r.status is Status.SKIPPED)
    suites = ET.Element("testsuites", name="labrig.verify")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"labrig.verify.{host}",
        hostname=host,
        timestamp=started,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{duration_s:.3f}",
    )
    for item in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{host}.{item.check_id.split('.')[0]}",
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
    return suites


def write(
    results: list[CheckResult],
    path: str | os.PathLike[str],
    *,
    host: str,
    started: str,
    duration_s: float,
) -> None:
    tree = ET.ElementTree(build(results, host=host, started=started, duration_s=duration_s))
    ET.indent(tree)
    with Path(path).open("wb") as handle:
        tree.write(handle, encoding="utf-8", xml_declaration=True)
