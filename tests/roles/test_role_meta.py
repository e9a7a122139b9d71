"""meta/main.yml says the same of every role (licence, Ansible version, platforms) and every role
but the shared one depends on it; the licence is the repository's."""

from __future__ import annotations

import pytest
import yaml
from role_support import REPO, ROLES

ROLE_NAMES = sorted(p.parents[1].name for p in ROLES.glob("*/meta/main.yml"))
SHARED = ("namespace", "author", "license", "min_ansible_version", "platforms")


def meta(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "meta" / "main.yml").read_text())


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_meta_is_aligned(role):
    info = meta(role)["galaxy_info"]
    reference = meta("labrig")["galaxy_info"]
    assert info["role_name"] == role
    assert {key: info[key] for key in SHARED} == {key: reference[key] for key in SHARED}
    assert meta(role)["dependencies"] == ([] if role == "labrig" else ["labrig"])


def test_the_licence_is_the_repositorys():
    assert meta("labrig")["galaxy_info"]["license"] == "Apache-2.0"
    assert "Apache License" in (REPO / "LICENSE").read_text()
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text()
