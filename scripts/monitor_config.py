#!/usr/bin/env python3
"""`make monitor`: a Prometheus configuration for the inventory's monitored hosts.

Writes into OUT (default reports/monitoring):
  prometheus.yml            scrape job `labrig-node` over file_sd targets, the alert rules
  targets/labrig-node.json  one target per host with labrig_monitoring true: its node_exporter
                            address (monitoring_listen_address, else ansible_host, else the name)
                            and port (monitoring_node_exporter_port, else 9100), labelled with
                            `host` and `group` (the host's smallest inventory group, or
                            monitoring_group)
  rules/labrig.rules.yml    monitoring/labrig.rules.yml (alerts: docs/monitoring.md)
then runs `promtool check config` on it where promtool is installed. Re-running rewrites the
targets atomically: a running Prometheus picks up added or removed hosts without a reload.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "monitoring" / "labrig.rules.yml"
JOB = "labrig-node"
DEFAULT_PORT = 9100
NOT_GROUPS = {"all", "ungrouped"}
DOWN_ALERT = "LabrigNodeExporterDown"
# Prometheus durations: 30s, 5m, 1h30m.
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _truthy(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() in {"true", "yes", "on", "1"}


def host_groups(inventory: dict[str, Any]) -> dict[str, list[str]]:
    """Host -> the groups that list it directly (not through a child group)."""
    groups: dict[str, list[str]] = {}
    for name, group in inventory.items():
        if name == "_meta" or not isinstance(group, dict):
            continue
        for host in group.get("hosts") or []:
            groups.setdefault(host, []).append(name)
    return groups


def group_of(host: str, hostvars: dict[str, Any], groups: dict[str, list[str]], sizes) -> str:
    """The group a host's versions are compared within: monitoring_group, else the smallest
    group that lists it (the most specific: `rtx3090` rather than `lab`)."""
    if hostvars.get("monitoring_group"):
        return str(hostvars["monitoring_group"])
    named = [g for g in groups.get(host, []) if g not in NOT_GROUPS]
    if not named:
        return "ungrouped"
    return min(named, key=lambda g: (sizes[g], g))


def address_of(host: str, hostvars: dict[str, Any]) -> str:
    address = str(hostvars.get("monitoring_listen_address") or hostvars.get("ansible_host") or host)
    port = int(hostvars.get("monitoring_node_exporter_port") or DEFAULT_PORT)
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def targets(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """file_sd entries, one per monitored host, in inventory order."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    groups = host_groups(inventory)
    sizes = {
        name: len(group.get("hosts") or [])
        for name, group in inventory.items()
        if name != "_meta" and isinstance(group, dict)
    }
    entries = []
    for host, variables in hostvars.items():
        if not _truthy(variables.get("labrig_monitoring", False)):
            continue
        entries.append(
            {
                "targets": [address_of(host, variables)],
                "labels": {"host": host, "group": group_of(host, variables, groups, sizes)},
            }
        )
    return entries


def prometheus_config(*, scrape_interval: str, evaluation_interval: str) -> dict[str, Any]:
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": ["rules/labrig.rules.yml"],
        "scrape_configs": [
            {
                "job_name": JOB,
                "file_sd_configs": [{"files": [f"targets/{JOB}.json"], "refresh_interval": "1m"}],
            }
        ],
    }


def rules_text(source: str, *, down_after: str | None) -> str:
    """The alert rules, with the node_exporter-down alert's `for` changed when asked."""
    if not down_after:
        return source
    rules = yaml.safe_load(source)
    found = False
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == DOWN_ALERT:
                rule["for"] = down_after
                found = True
    if not found:
        raise ValueError(f"{DOWN_ALERT} is not in the rules")
    return "---\n" + yaml.safe_dump(rules, sort_keys=False, width=120)


def _write(path: Path, text: str) -> None:
    # Prometheus re-reads file_sd targets when they change: never half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def write_config(
    out: Path,
    inventory: dict[str, Any],
    *,
    scrape_interval: str = "1m",
    evaluation_interval: str = "1m",
    down_after: str | None = None,
) -> list[dict[str, Any]]:
    entries = targets(inventory)
    config = prometheus_config(
        scrape_interval=scrape_interval, evaluation_interval=evaluation_interval
    )
    _write(out / "prometheus.yml", "---\n" + yaml.safe_dump(config, sort_keys=False))
    _write(out / "targets" / f"{JOB}.json", json.dumps(entries, indent=1) + "\n")
    _write(
        out / "rules" / "labrig.rules.yml",
        rules_text(RULES.read_text(encoding="utf-8"), down_after=down_after),
    )
    return entries


def read_inventory(inventory: str) -> dict[str, Any]:
    command = [str(Path(sys.executable).with_name("ansible-inventory")), "-i", inventory, "--list"]
    if not Path(command[0]).exists():
        command[0] = "ansible-inventory"
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"monitor: ansible-inventory failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def duration(text: str) -> str:
    if not DURATION.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Prometheus duration (30s, 5m, 1h)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inventory", required=True, help="the Ansible inventory (file or folder)")
    parser.add_argument("--out", default="reports/monitoring", help="output folder")
    parser.add_argument("--scrape-interval", type=duration, default="1m")
    parser.add_argument("--evaluation-interval", type=duration, default="1m")
    parser.add_argument(
        "--down-after", type=duration, help=f"`for` of {DOWN_ALERT} (default: the rules' 5m)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    entries = write_config(
        out,
        read_inventory(args.inventory),
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
        down_after=args.down_after,
    )
    print(f"monitor: {len(entries)} monitored host(s) (labrig_monitoring: true) in {out}/")
    for entry in entries:
        labels = entry["labels"]
        print(f"  {labels['host']:<20} {entry['targets'][0]:<24} group {labels['group']}")
    if not entries:
        print("monitor: no host has labrig_monitoring: true; set it and run make provision")
    promtool = shutil.which("promtool")
    if promtool is None:
        print("monitor: promtool not found (Debian's prometheus package): config not checked")
        return 0
    checked = subprocess.run(
        [promtool, "check", "config", str(out / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    if checked.returncode != 0:
        sys.stderr.write(checked.stdout + checked.stderr)
        return 1
    print(f"monitor: promtool check config {out}/prometheus.yml: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
