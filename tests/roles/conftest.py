"""Run role logic through Ansible itself on this machine, without changing it.

Every test builds a throwaway inventory of local "hosts" (one per case, `connection: local`) and a
playbook in a tmp dir, runs `ansible-playbook` once with the JSON callback, and reads back each
host's task results. Cases are batched into one run because ansible-playbook costs ~1.5 s to start.
"""

from __future__ import annotations

import pytest
from role_support import RESOLUTION_CASES, RESOLUTION_TASKS, PlaybookRun, run_tasks


@pytest.fixture(scope="session")
def resolution(tmp_path_factory) -> PlaybookRun:
    run = run_tasks(
        tmp_path_factory.mktemp("resolution"),
        RESOLUTION_TASKS,
        # Ubuntu hosts have no Debian sources to extend; resolve_debian.yml then finds nothing.
        {
            name: {"apt_sources_host_sources": [], "nvidia_driver_apt_policy": "", **case}
            for name, case in RESOLUTION_CASES.items()
        },
        report_vars=(
            "nvidia_driver_plan",
            "nvidia_driver_nvml_version",
            "nvidia_driver_resolved_version",
            "cuda_plan",
            "cuda_host_compiler",
            "cudnn_plan",
            "mkl_plan",
            "apt_sources_rendered",
            "apt_sources_debian_extra_sources",
        ),
    )
    failed = {host: run.failure_message(host) for host in RESOLUTION_CASES}
    assert not {host: message for host, message in failed.items() if message}, failed
    return run
