"""The verify role's interface: every default is declared, typed and documented."""

from __future__ import annotations

import re

import yaml
from role_support import ROLES

ROLE = ROLES / "verify"


def load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def test_every_default_is_in_the_argument_spec_and_the_readme() -> None:
    defaults = set(load("defaults/main.yml"))
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    documented = set(re.findall(r"^### `(\w+)`$", (ROLE / "README.md").read_text(), re.M))
    assert defaults - set(options) == set()
    assert defaults - documented == set()
    # Shared variables read by the role are declared too, without a default of their own here.
    assert set(options) - defaults == {"labrig_wheelhouse"}
    assert documented == set(options)


def test_spec_types_match_the_defaults() -> None:
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    python_types = {"bool": bool, "int": int, "float": float, "dict": dict, "list": list}
    for name, value in defaults.items():
        expected = python_types.get(options[name]["type"])
        if expected and not (isinstance(value, str) and "{{" in value):
            assert isinstance(value, expected), name
