"""fleet.junit.xml: a <testsuite> per host, a <testcase> per check per GPU.

classname is `host.gpuN` for a GPU's check and `host` for the host's own, so CI systems group
the results by machine and card. A host where the suite could not run is one errored testcase,
so it is never silently missing from the CI view. Failures and errors are the blocking results
only (as in the per-host JUnit of verify/report/junit.py); an advisory finding is a passing
testcase whose system-out starts with `advisory failed:`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from verify.fleet.merge import HOST_SUITE_ERROR, HOST_UNREACHABLE, subject_rows
from verify.result import Status


def _testcase(suite: ET.Element, classname: str, name: str, time_s: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{time_s:.3f}")


def _host_suite(root: ET.Element, host: dict[str, Any], run_id: str) -> None:
    suite = ET.SubElement(root, "testsuite", name=host["host"], id=run_id)
    tallies = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    if host["state"] in (HOST_UNREACHABLE, HOST_SUITE_ERROR):
        case = _testcase(suite, host["host"], host["state"], 0.0)
        ET.SubElement(case, "error", message=host["reason"], type=host["state"]).text = host[
            "reason"
        ]
        tallies["tests"] = tallies["errors"] = 1
    for row in subject_rows(host):
        for check in row.checks:
            case = _testcase(suite, row.label, check.check_id, check.duration_s)
            tallies["tests"] += 1
            total_time += check.duration_s
            detail = check.reason
            if check.measurements:
                detail += "\nmeasurements: " + json.dumps(check.measurements, sort_keys=True)
            if check.status is Status.SKIPPED:
                tallies["skipped"] += 1
                ET.SubElement(case, "skipped", message=check.reason)
            elif check.blocking and check.status is Status.FAILED:
                tallies["failures"] += 1
                severity = check.severity.value
                element = ET.SubElement(case, "failure", message=check.reason, type=severity)
                element.text = detail
            elif check.blocking:
                tallies["errors"] += 1
                element = ET.SubElement(case, "error", message=check.reason, type="error")
                element.text = detail
            elif check.status is not Status.PASSED:
                # An advisory finding (gpu.persistence off) is no JUnit failure: the XML agrees
                # with the host's exit code, as the per-host report's does.
                ET.SubElement(case, "system-out").text = f"advisory {check.status.value}: {detail}"
            elif check.measurements:
                ET.SubElement(case, "system-out").text = detail
    for key, value in tallies.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_time:.3f}")
    if host.get("started"):
        suite.set("timestamp", str(host["started"]))


def render_junit(fleet: dict[str, Any]) -> str:
    root = ET.Element("testsuites", name=f"labrig fleet {fleet['run_id']}")
    for host in fleet["hosts"]:
        _host_suite(root, host, fleet["run_id"])
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, 0)) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
