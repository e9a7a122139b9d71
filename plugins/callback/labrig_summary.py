"""The end-of-run summary of `make provision`: which hosts failed and why, which were never run.

A task at the end of the play cannot do this: when every host of a batch has failed, Ansible ends
the playbook before any later task or play. A callback sees the end of every run.
"""

from __future__ import annotations

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: labrig_summary
type: aggregate
short_description: Summary of a labrig provisioning run, printed even when every host failed
description:
  - >-
    For playbooks/provision.yml (and site.yml): one line per host that failed (the reason the play
    recorded, "<task>: <reason>"), was unreachable, or was never run because the rollout stopped;
    then the hosts the converged fast path left alone, and why the others had a full run.
requirements: [enable in ansible.cfg (callbacks_enabled)]
"""

# The plays of playbooks/provision.yml; other playbooks get no summary.
PROVISION_PLAYS = (
    "Preflight - check every host before anything changes",
    "Provision the NVIDIA stack",
)
STOP_TASK = "Stop this host"
# roles/labrig/tasks/converged.yml: its result says whether the host is as its last run left it.
PROBE_TASK = "Compare the host with the record of its last converged run"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "labrig_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._active = False
        self._targets: list[str] = []
        self._failures: dict[str, str] = {}
        self._stopped: set[str] = set()
        self._in_play = ""
        # Hosts with a result in the provisioning play: a rollout that stopped never reached others.
        self._provisioning: set[str] | None = None
        # The converged fast path: host -> when its record was written; host -> why a full run.
        self._converged: dict[str, str] = {}
        self._full_run: dict[str, str] = {}

    def v2_playbook_on_play_start(self, play) -> None:
        self._in_play = play.get_name().strip()
        if self._in_play not in PROVISION_PLAYS:
            return
        self._active = True
        if self._in_play == PROVISION_PLAYS[1] and self._provisioning is None:
            self._provisioning = set()
        inventory = play.get_variable_manager()._inventory
        # The hosts the run targets (--limit applied), not only the current batch.
        for host in inventory.get_hosts(play.hosts, ignore_restrictions=True):
            if host.name not in self._targets:
                self._targets.append(host.name)

    def _seen(self, result) -> None:
        if self._in_play == PROVISION_PLAYS[1] and self._provisioning is not None:
            self._provisioning.add(result._host.get_name())

    def v2_runner_on_ok(self, result) -> None:
        self._seen(result)
        if self._active and result._task.get_name().strip().endswith(PROBE_TASK):
            host, probe = result._host.get_name(), result._result
            if probe.get("converged"):
                self._converged[host] = str(probe.get("recorded", ""))
            elif probe.get("reason"):
                self._full_run[host] = str(probe["reason"])

    def v2_runner_on_skipped(self, result) -> None:
        self._seen(result)

    def _record(self, result, reason: str) -> None:
        self._seen(result)
        host = result._host.get_name()
        if host in self._stopped:
            return
        if result._task.get_name().strip() == STOP_TASK:
            # The play's own account: "<host> failed in <task>: <reason>".
            self._stopped.add(host)
            reason = str(reason).split(": ", 1)[-1].removeprefix(f"{host} failed in ")
        self._failures[host] = " ".join(str(reason).split())

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        if self._active and not ignore_errors:
            message = result._result.get("msg") or result._result.get("stderr") or "failed"
            self._record(result, f"{result._task.get_name().strip()}: {message}")

    def v2_runner_on_unreachable(self, result) -> None:
        if self._active:
            self._record(result, f"unreachable: {result._result.get('msg', '')}")

    def v2_playbook_on_stats(self, stats) -> None:
        if not self._active:
            return
        lines = []
        for host in self._targets:
            if host in self._failures:
                lines.append(f"{host}: {self._failures[host]}")
            elif host in self._converged:
                continue
            elif host not in stats.processed or (
                self._provisioning is not None and host not in self._provisioning
            ):
                lines.append(f"{host}: not run: the rollout stopped before its batch")
        self._display.banner("LABRIG SUMMARY")
        if not lines:
            self._display.display(f"every host was provisioned ({len(self._targets)})")
        for line in lines:
            self._display.display(line)
        for host in self._targets:
            if host in self._converged:
                self._display.display(
                    f"{host}: converged as its run of {self._converged[host]} left it; nothing run"
                    " (FULL=1 runs every task)"
                )
            elif host in self._full_run and host not in self._failures:
                self._display.display(f"{host}: full run: {self._full_run[host]}")
