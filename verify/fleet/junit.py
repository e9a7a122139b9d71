"""fleet.junit.xml: the per-host JUnit scheme of verify/report/junit.py, a suite per host.

A host where the suite could not run is one errored testcase named after its state
(`unreachable`, `suite_error`), so it is never silently missing from the CI view.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from verify.fleet.merge import HOST_SUITE_ERROR, HOST_UNREACHABLE, subject_rows
from verify.report.junit import add_suite, to_xml
from verify.result import CheckResult, Status


def _host_results(host: dict[str, Any]) -> list[CheckResult]:
    results = [check for row in subject_rows(host) for check in row.checks]
    if host["state"] in (HOST_UNREACHABLE, HOST_SUITE_ERROR):
        results.insert(0, CheckResult(host["state"], Status.ERROR, host["reason"]))
    return results


def render_junit(fleet: dict[str, Any]) -> str:
    root = ET.Element("testsuites", name=f"labrig fleet {fleet['run_id']}")
    for host in fleet["hosts"]:
        started = {"timestamp": str(host["started"])} if host.get("started") else {}
        add_suite(
            root,
            _host_results(host),
            host=host["host"],
            gpus=host.get("gpus"),
            id=fleet["run_id"],
            **started,
        )
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, 0)) for s in root)))
    return to_xml(root)
