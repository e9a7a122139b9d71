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


# The roles that read the stack's three inputs under their own names.
STACK_READERS = ("labrig", "nouveau", "nvidia_driver", "cuda", "cudnn", "mkl", "mxnet")


def test_the_stack_inputs_are_defined_once_in_the_labrig_role():
    for defaults in ROLES.glob("*/defaults/main.yml"):
        text = defaults.read_text()
        for name in ("labrig_use_cuda", "labrig_blas", "labrig_framework"):
            assert not re.search(rf"\b{name}\s*\|\s*default\(", text), (defaults, name)
    labrig = yaml.safe_load((ROLES / "labrig" / "defaults" / "main.yml").read_text())
    assert (labrig["labrig_use_cuda"], labrig["labrig_blas"], labrig["labrig_framework"]) == (
        True,
        "mkl",
        "mxnet",
    )


def test_a_minimal_inventory_gives_one_consistent_stack(tmp_path):
    """A host with only its address: every role and preflight agree on the GPU stack with MKL and
    MXNet's GPU wheel (mxnet-cu112 with the pip method), and nothing anywhere says CPU-only or
    OpenBLAS."""
    from role_support import DEBIAN12, run_tasks

    tasks = [
        {"ansible.builtin.include_vars": {"file": str(ROLES / role / "defaults" / "main.yml")}}
        for role in STACK_READERS
    ]
    tasks.append(
        {"ansible.builtin.include_vars": {"file": str(ROLES / "labrig" / "vars" / "main.yml")}}
    )
    names = (
        "nouveau_enabled", "nvidia_driver_enabled", "cuda_enabled", "cudnn_use_cuda",
        "mkl_blas", "mxnet_use_cuda", "mxnet_blas", "mxnet_framework", "labrig_python_method",
    )  # fmt: skip
    run = run_tasks(
        tmp_path,
        tasks,
        {"minimal": {"labrig_platform": DEBIAN12, "mxnet_install_method": "pip"}},
        report_vars=(*names, "mxnet_pip_package"),
    )
    values = {name: run.value("minimal", name) for name in (*names, "mxnet_pip_package")}
    for flag in ("nouveau_enabled", "nvidia_driver_enabled", "cuda_enabled", "cudnn_use_cuda"):
        assert str(values[flag]).lower() == "true", values
    assert values["mxnet_use_cuda"] is True, values
    assert values["mkl_blas"] == values["mxnet_blas"] == "mkl", values
    assert values["mxnet_framework"] == "mxnet" and values["mxnet_pip_package"] == "mxnet-cu112"
    assert values["labrig_python_method"] == "system", values
