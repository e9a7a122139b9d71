"""The controller side of the converged fast path: the digest of a run's inputs.

The inputs are what decides what the roles do to a host: labrig's code (every file of its roles,
playbooks and plugins) and the values of the variables the roles read (every variable named after
a role, `<role>_*`, as the inventory and the command line set it), minus the options that change
how a run goes but not where the host ends up (rollout batches, lock waits, the fast path itself).
Values are taken as written, not templated: a value computed from facts or from the controller's
environment is seen by its expression only (FULL=1 runs every task).

The digest goes to the labrig_converged module on the host, and into the fact
labrig_converged_inputs, which the end of the run writes into the record.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ansible.plugins.action import ActionBase

ROLES_DIR = Path(__file__).resolve().parents[2]
CODE_DIRS = ("roles", "playbooks", "plugins")
# How a run goes, not where the host ends up; and what runs set for themselves.
RUN_OPTIONS = frozenset(
    {
        "labrig_batch",
        "labrig_max_fail",
        "labrig_maintenance_ok",
        "labrig_lock_wait",
        "labrig_fast_path",
        "labrig_provision_localhost",
        "labrig_network_retries",
        "labrig_network_delay",
        "labrig_reboot_throttle",
        "labrig_converged_inputs",
        "labrig_converged",
        "labrig_run",
        "labrig_failure",
        "labrig_provisioned",
        "labrig_converged_units",
        "labrig_converged_trees",
    }
)


def role_names(roles_dir: Path = ROLES_DIR) -> list[str]:
    return sorted(entry.name for entry in roles_dir.iterdir() if (entry / "tasks").is_dir())


def code_digest(project: Path = ROLES_DIR.parent) -> str:
    digest = hashlib.sha256()
    for top in CODE_DIRS:
        for folder, dirs, files in os.walk(project / top):
            dirs[:] = sorted(name for name in dirs if name != "__pycache__")
            for name in sorted(name for name in files if not name.endswith(".pyc")):
                path = Path(folder, name)
                digest.update(f"{path.relative_to(project)}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def role_variables(task_vars: dict, roles: list[str]) -> dict:
    prefixes = tuple(f"{role}_" for role in roles)
    return {
        name: value
        for name, value in task_vars.items()
        if name.startswith(prefixes) and name not in RUN_OPTIONS
    }


def inputs_digest(task_vars: dict, project: Path = ROLES_DIR.parent) -> str:
    variables = role_variables(task_vars, role_names(project / "roles"))
    text = json.dumps(variables, sort_keys=True, default=repr)
    return hashlib.sha256(f"{code_digest(project)}\0{text}".encode()).hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("state", "probe") != "absent" and not args.get("inputs"):
            args["inputs"] = inputs_digest(task_vars)
        result.update(
            self._execute_module(
                module_name="labrig_converged", module_args=args, task_vars=task_vars
            )
        )
        if args.get("state", "probe") == "probe" and not result.get("failed"):
            result["ansible_facts"] = {
                "labrig_converged": bool(result.get("converged")),
                "labrig_converged_inputs": args["inputs"],
            }
        return result
