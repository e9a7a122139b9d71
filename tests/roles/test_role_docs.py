"""Every role README's Variables section is the one `make docs` writes from meta/argument_specs.yml:
a variable is described once, in the spec, and the README never drifts from it."""

from __future__ import annotations

import importlib.util

import pytest
from role_support import REPO, ROLES

SPEC = importlib.util.spec_from_file_location("role_docs", REPO / "scripts" / "role_docs.py")
role_docs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(role_docs)


def test_no_readme_is_stale():
    stale = sorted(str(path.relative_to(REPO)) for path in role_docs.stale(ROLES))
    assert not stale, f"out of date, run `make docs`: {stale}"


@pytest.mark.parametrize(
    "role", sorted(p.parents[1].name for p in ROLES.glob("*/meta/argument_specs.yml"))
)
def test_every_specified_variable_is_in_the_readme(role):
    readme = (ROLES / role / "README.md").read_text()
    section = readme.split(role_docs.BEGIN, 1)[1].split(role_docs.END, 1)[0]
    for options in role_docs.yaml.safe_load(
        (ROLES / role / "meta" / "argument_specs.yml").read_text()
    )["argument_specs"].values():
        for name in options.get("options") or {}:
            assert f"`{name}`\n" in section, name


def test_a_stale_section_is_found_and_rewritten(tmp_path):
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      demo_jobs:\n        type: int\n        description: [Parallel <jobs>., Second.]\n"
        "      demo_mode:\n        type: str\n        choices: [fast, safe]\n"
        "        description: How.\n"
    )
    (role / "defaults" / "main.yml").write_text("demo_jobs: 4\ndemo_mode: safe\n")
    readme = role / "README.md"
    readme.write_text(
        f"# demo\n\n## Variables\n\n{role_docs.BEGIN}\nold\n{role_docs.END}\n\nEnd.\n"
    )

    assert role_docs.main(["--check", str(tmp_path)]) == 1
    assert role_docs.main([str(tmp_path)]) == 0

    text = readme.read_text()
    assert "old" not in text and text.endswith("\nEnd.\n")
    assert (
        "### `demo_jobs`\n\nParallel &lt;jobs&gt;.\n\nSecond.\n\n- type `int`; default `4`" in text
    )
    assert "- type `str`; default `safe`; one of `fast`, `safe`" in text
    assert role_docs.main(["--check", str(tmp_path)]) == 0
