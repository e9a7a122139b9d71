"""Preflight, and the labrig role's resolution of `auto` it shares with the roles, read other roles'
variables with `| default(...)` (their defaults are not loaded yet when preflight runs). Those
fallbacks must be the values the roles really default to."""

import re

import yaml
from role_support import ROLES

READS = re.compile(r"\b([a-z][a-z0-9_]*) \| default\('([^']*)'\)")


def role_literal_defaults() -> dict:
    found = {}
    for defaults in ROLES.glob("*/defaults/main.yml"):
        for name, value in (yaml.safe_load(defaults.read_text()) or {}).items():
            if isinstance(value, str | int | float) and "{{" not in str(value):
                found[name] = str(value)
    return found


def test_preflight_fallbacks_match_role_defaults():
    text = (ROLES / "preflight" / "tasks" / "checks.yml").read_text()
    text += (ROLES / "preflight" / "vars" / "checks.yml").read_text()
    text += (ROLES / "labrig" / "vars" / "main.yml").read_text()
    defaults = role_literal_defaults()
    reads = {name: value for name, value in READS.findall(text) if name in defaults}
    assert {
        "cuda_version",
        "nvidia_driver_branch",
        "nvidia_driver_install_method",
        "cuda_install_method",
        "cudnn_method",
        "mxnet_nccl_method",
    } <= set(reads)
    mismatched = {
        name: (value, defaults[name]) for name, value in reads.items() if defaults[name] != value
    }
    assert not mismatched, mismatched
