"""`make monitor`: targets from the inventory, a config promtool accepts, and alert rules whose
every alert promtool's own unit tests fire (monitoring/labrig.rules.test.yml)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import monitor_config  # noqa: E402

MONITORING = REPO / "monitoring"

INVENTORY = {
    "_meta": {
        "hostvars": {
            "ws01": {"ansible_host": "10.0.0.11", "labrig_monitoring": True},
            "ws02": {
                "ansible_host": "ws02.lab",
                "labrig_monitoring": "yes",
                "monitoring_listen_address": "10.0.1.12",
                "monitoring_node_exporter_port": 9200,
            },
            "ws03": {"ansible_host": "fd00::13", "labrig_monitoring": "true"},
            "ws04": {"ansible_host": "10.0.0.14"},
            "ws05": {"labrig_monitoring": True, "monitoring_group": "bench"},
            "ws06": {"labrig_monitoring": False},
        }
    },
    "all": {"children": ["ungrouped", "lab"]},
    "lab": {"children": ["rtx3090", "a6000"], "hosts": ["ws01", "ws02", "ws05"]},
    "rtx3090": {"hosts": ["ws01", "ws02"]},
    "a6000": {"hosts": ["ws04"]},
    "ungrouped": {"hosts": ["ws03", "ws06"]},
}


def test_targets_are_the_monitored_hosts_with_their_address_and_group():
    assert monitor_config.targets(INVENTORY) == [
        {"targets": ["10.0.0.11:9100"], "labels": {"host": "ws01", "group": "rtx3090"}},
        {"targets": ["10.0.1.12:9200"], "labels": {"host": "ws02", "group": "rtx3090"}},
        {"targets": ["[fd00::13]:9100"], "labels": {"host": "ws03", "group": "ungrouped"}},
        {"targets": ["ws05:9100"], "labels": {"host": "ws05", "group": "bench"}},
    ]


def test_down_after_changes_only_that_alerts_wait():
    source = (MONITORING / "labrig.rules.yml").read_text()
    assert monitor_config.rules_text(source, down_after=None) == source
    changed = yaml.safe_load(monitor_config.rules_text(source, down_after="15s"))
    original = yaml.safe_load(source)
    waits = {r["alert"]: r.get("for") for r in changed["groups"][0]["rules"]}
    before = {r["alert"]: r.get("for") for r in original["groups"][0]["rules"]}
    assert waits.pop("LabrigNodeExporterDown") == "15s"
    before.pop("LabrigNodeExporterDown")
    assert waits == before


@pytest.mark.parametrize("text", ["5", "five minutes", "5m;", ""])
def test_durations_are_checked(text):
    with pytest.raises(Exception, match="duration"):
        monitor_config.duration(text)


def test_write_config_lays_out_what_prometheus_yml_names(tmp_path):
    entries = monitor_config.write_config(tmp_path, INVENTORY, scrape_interval="5s")
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "5s"
    (rules,) = config["rule_files"]
    assert (tmp_path / rules).is_file()
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "labrig-node"
    (target_file,) = job["file_sd_configs"][0]["files"]
    assert json.loads((tmp_path / target_file).read_text()) == entries
    assert sorted(p.name for p in (tmp_path / "targets").iterdir()) == ["labrig-node.json"]


def test_promtool_accepts_the_written_config(tmp_path, promtool):
    monitor_config.write_config(tmp_path, INVENTORY, down_after="30s")
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_unit_tests_of_the_alert_rules_pass(promtool):
    tested = subprocess.run(
        [promtool, "test", "rules", "labrig.rules.test.yml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    rules = yaml.safe_load((MONITORING / "labrig.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MONITORING / "labrig.rules.test.yml").read_text())
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set()
    assert {
        "LabrigRequiredCheckFailing",
        "LabrigNewXid",
        "LabrigUncorrectableEcc",
        "LabrigNotVerified",
        "LabrigDriverDrift",
        "LabrigFrameworkDrift",
        "LabrigNodeExporterDown",
    } <= alerts
