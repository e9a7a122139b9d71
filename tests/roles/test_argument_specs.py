"""Every role's meta/argument_specs.yml: complete, and it rejects wrong types and choices with a
message naming the variable - both when the role starts and in preflight, before any change."""

from __future__ import annotations

import re

import pytest
import yaml
from role_support import ROLES, run_tasks

ROLE_NAMES = sorted(spec.parents[1].name for spec in ROLES.glob("*/meta/argument_specs.yml"))
# A role may read a project-wide input under its own name: `mxnet_blas: "{{ labrig_blas }}"` (the
# input defined once, in the labrig role) or `"{{ x | default(...) }}"`. The input is what the spec
# declares; the alias is internal.
LITERAL = re.compile(r"^('[^']*'|\[\]|\{\}|true|false|-?\d+(\.\d+)?)$")
ALIAS = re.compile(r"^\{\{ (?P<option>\w+)(?: \| default\((?P<fallback>.*)\))?(?: \| bool)? \}\}$")


def spec_options(role: str) -> dict:
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def role_defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}


def aliases(role: str) -> dict[str, re.Match]:
    """Defaults that only rename a specified option: name -> the match (option, fallback)."""
    options = spec_options(role)
    found = {}
    for name, value in role_defaults(role).items():
        match = ALIAS.match(value) if isinstance(value, str) else None
        if name not in options and match and match["option"] in options:
            found[name] = match
    return found


def test_every_role_has_an_argument_spec():
    assert sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir()) == ROLE_NAMES
    assert "mxnet" in ROLE_NAMES


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_specified_and_described(role):
    options = spec_options(role)
    unspecified = set(role_defaults(role)) - set(options) - set(aliases(role))
    assert not unspecified, unspecified
    for name, option in options.items():
        assert option.get("type"), f"{role}: {name} has no type"
        assert option.get("description"), f"{role}: {name} has no description"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_literal_defaults_match_the_spec(role):
    defaults = role_defaults(role)
    # An input read through an alias falls back to the alias's literal.
    # Without a fallback, the labrig role's own default.
    labrig = role_defaults("labrig")
    fallbacks = {
        m["option"]: m["fallback"] or yaml.safe_dump(labrig.get(m["option"])).split("\n")[0]
        for m in aliases(role).values()
    }
    for name, option in spec_options(role).items():
        if name not in defaults and name in fallbacks:
            if "default" in option and LITERAL.match(fallbacks[name]):
                value = yaml.safe_load(fallbacks[name])
                assert option["default"] == value, f"{role}: {name} falls back to {value!r}"
            continue
        value = defaults.get(name)
        if "default" in option and not (isinstance(value, str) and "{{" in value):
            assert option["default"] == value, (
                f"{role}: {name} spec {option['default']!r} != {value!r}"
            )
        if "choices" in option and name in defaults and "{{" not in str(value):
            assert value in option["choices"], f"{role}: default {name}={value!r} not in choices"


# (role, bad variables, the variable the message must name)
BAD_INPUT = {
    "reboot_timeout_word": (
        "nvidia_driver",
        {"nvidia_driver_reboot_timeout": "soon"},
        "nvidia_driver_reboot_timeout",
    ),
    "driver_method": (
        "nvidia_driver",
        {"nvidia_driver_install_method": "ppa"},
        "nvidia_driver_install_method",
    ),
    "reboot_ok_word": (
        "nvidia_driver",
        {"nvidia_driver_reboot_ok": "perhaps"},
        "nvidia_driver_reboot_ok",
    ),
    "reboot_policy": (
        "nvidia_driver",
        {"nvidia_driver_reboot": "sometimes"},
        "nvidia_driver_reboot",
    ),
    "use_cuda_word": ("cuda", {"labrig_use_cuda": "maybe"}, "labrig_use_cuda"),
    "cuda_method": ("cuda", {"cuda_install_method": "conda"}, "cuda_install_method"),
    "cudnn_method": ("cudnn", {"cudnn_method": "pip"}, "cudnn_method"),
    "cudnn_license_word": ("cudnn", {"cudnn_accept_license": "sure"}, "cudnn_accept_license"),
    "blas_choice": ("mkl", {"labrig_blas": "cublas"}, "labrig_blas"),
    "disk_table_word": (
        "preflight",
        {"preflight_disk_required_mib": "lots"},
        "preflight_disk_required_mib",
    ),
    "cache_time": (
        "apt_sources",
        {"apt_sources_cache_valid_time": "a day"},
        "apt_sources_cache_valid_time",
    ),
    "require_gpu_word": ("preflight", {"preflight_require_gpu": "nope"}, "preflight_require_gpu"),
    "override_string": (
        "preflight",
        {"preflight_facts_override": "Debian"},
        "preflight_facts_override",
    ),
    "nouveau_reboot": ("nouveau", {"nouveau_reboot_ok": "later"}, "nouveau_reboot_ok"),
    "mxnet_method": ("mxnet", {"mxnet_install_method": "conda"}, "mxnet_install_method"),
    "mxnet_framework": ("mxnet", {"labrig_framework": "tensorflow"}, "labrig_framework"),
    "mxnet_jobs_word": ("mxnet", {"mxnet_build_jobs": "many"}, "mxnet_build_jobs"),
    "verify_framework": ("verify", {"verify_framework": "caffe"}, "verify_framework"),
    "verify_cpu_only_word": ("verify", {"verify_cpu_only": "perhaps"}, "verify_cpu_only"),
}


@pytest.fixture(scope="module")
def spec_run(tmp_path_factory):
    hosts = {}
    for name, (role, bad, _) in BAD_INPUT.items():
        hosts[name] = {"spec_role": role, **bad}
    for role in ROLE_NAMES:
        hosts[f"good_{role}"] = {"spec_role": role}
    tasks = [
        {
            "name": "Validate",
            "ansible.builtin.validate_argument_spec": {
                "argument_spec": "{{ (lookup('ansible.builtin.file', roles_dir ~ '/' ~ spec_role"
                " ~ '/meta/argument_specs.yml') | from_yaml).argument_specs.main.options }}",
            },
            "vars": {"roles_dir": str(ROLES)},
        }
    ]
    return run_tasks(tmp_path_factory.mktemp("specs"), tasks, hosts)


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_rejected_naming_the_variable(spec_run, case):
    message = spec_run.failure_message(case)
    assert message is not None, f"{case} was accepted"
    # "argument 'X' is of type ..." for types, "value of X must be one of ..." for choices.
    assert re.search(rf"(argument '|value of ){BAD_INPUT[case][2]}\b", message), message


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_defaults_pass_their_own_spec(spec_run, role):
    assert spec_run.failure(f"good_{role}") is None


def test_preflight_validates_every_role_before_any_change(tmp_path):
    """A wrong choice for a later role (cuda) stops the host in preflight's first task."""
    run = run_tasks(
        tmp_path,
        [{"ansible.builtin.include_role": {"name": "preflight", "tasks_from": "validate.yml"}}],
        {
            "wrong_cuda_method": {"cuda_install_method": "conda"},
            "wrong_driver_flavour": {"nvidia_driver_kernel_modules": "nouveau"},
            "wrong_monitoring_port": {"monitoring_node_exporter_port": "the usual one"},
            "all_good": {},
        },
    )
    assert "cuda_install_method" in (run.failure_message("wrong_cuda_method") or "")
    assert "nvidia_driver_kernel_modules" in (run.failure_message("wrong_driver_flavour") or "")
    assert "monitoring_node_exporter_port" in (run.failure_message("wrong_monitoring_port") or "")
    assert run.failure("all_good") is None
