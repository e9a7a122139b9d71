"""The source-build orchestration of the mxnet role on localhost, against the STAND-IN for
MXNet's build system (tests/fleet/stand_in_mxnet: a tiny git repo tagged 1.9.1 whose Makefile
records the make variables it receives). A real 1.9.1 build takes CPU-hours; this proves the
clone/verify/render/make -j/stamp/skip/clean+rebuild/failure logic around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from role_support import load_stand_in_generator, local_inventory, run_playbook

stand_in_module = load_stand_in_generator()

# The role's default of mxnet_share_build (the role's defaults are not loaded yet where it is read).
SHARE_BY_DEFAULT = "mxnet_make_target | default('') | length == 0"
FACTS = {"processor_vcpus": 4, "memory_mb": {"nocache": {"free": 16384}}}  # -> make -j4


def _play(name: str) -> dict:
    return {
        "name": name,
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Pretend cores and memory",
                "ansible.builtin.set_fact": {"cacheable": True, **FACTS},
            },
            *[
                {
                    "name": f"Role {step}",
                    "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": f"{step}.yml"},
                    **({"when": SHARE_BY_DEFAULT} if step == "share" else {}),
                }
                for step in ("source", "config", "stamp", "share", "build")
            ],
        ],
    }


def _host(workdir: Path, stand_in, name: str, **overrides) -> dict:
    return {
        "mxnet_git_repo": stand_in.url,
        "mxnet_git_commit": stand_in.commit,
        "mxnet_src_dir": str(workdir / name / "src"),
        "mxnet_build_log": str(workdir / name / "log" / "mxnet-build.log"),
        "mxnet_build_progress_interval": 1,
        "mxnet_owner": Path.home().owner(),
        "labrig_blas": "openblas",
        "labrig_use_cuda": False,
        **overrides,
    }


def _built_stamp(src: Path) -> str:
    return json.loads((src / ".labrig-build-state.json").read_text())["built"]


def _history(src: Path) -> list[str]:
    return [line.split()[0] for line in (src / "stand-in-history.log").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run 1: a fresh build on `ws` and, beside it, three hosts that must be refused (against a
    second stand-in whose tag was moved). Run 2: `ws` again, same inputs. Run 3: another BLAS."""
    workdir = tmp_path_factory.mktemp("mxnet-build")
    stand_in = stand_in_module.create(workdir / "stand-in")
    moved_stand_in = stand_in_module.create(workdir / "moved-stand-in")
    reviewed = moved_stand_in.commit
    moved = stand_in_module.move_tag(moved_stand_in)
    fake_cuda = workdir / "cuda-12"
    (fake_cuda / "bin").mkdir(parents=True)
    nvcc = fake_cuda / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.2, V12.2.140'\n")
    nvcc.chmod(0o755)

    ws = _host(workdir, stand_in, "ws")
    refused = {
        "moved_tag": _host(workdir, moved_stand_in, "moved_tag", mxnet_git_commit=reviewed),
        "broken_build": _host(
            workdir,
            moved_stand_in,
            "broken_build",
            mxnet_git_commit=moved,
            mxnet_make_target="no-such-target",
        ),
        # Objects only, as the fleet's CUDA-objects stage asks for: several targets, no library.
        "objects": _host(
            workdir,
            stand_in,
            "objects",
            mxnet_make_target="build/src/engine.o build/src/operator.o",
            mxnet_use_mkldnn=False,
        ),
        "cuda_12": _host(
            workdir,
            moved_stand_in,
            "cuda_12",
            mxnet_git_commit=moved,
            labrig_use_cuda=True,
            cuda_home=str(fake_cuda),
        ),
    }
    first = run_playbook(workdir / "run1", [_play("first")], local_inventory({"ws": ws, **refused}))
    src = Path(ws["mxnet_src_dir"])
    after_first = {
        "record": json.loads((src / "build" / "labrig-stand-in-make-vars.json").read_text()),
        "history": _history(src),
        "stamp": _built_stamp(src),
        "log": Path(ws["mxnet_build_log"]).read_text(),
    }
    second = run_playbook(workdir / "run2", [_play("same inputs")], local_inventory({"ws": ws}))
    after_second = {"history": _history(src)}
    third = run_playbook(
        workdir / "run3",
        [_play("new BLAS")],
        local_inventory({"ws": {**ws, "labrig_blas": "atlas"}}),
    )
    return {
        "workdir": workdir,
        "src": src,
        "hosts": {"ws": ws, **refused},
        "reviewed": reviewed,
        "moved": moved,
        "first": first,
        "after_first": after_first,
        "second": second,
        "after_second": after_second,
        "third": third,
    }


def test_first_run_clones_renders_and_builds_with_the_computed_jobs(runs):
    assert runs["first"].failure("ws") is None, runs["first"].failure("ws")
    record = runs["after_first"]["record"]
    assert record["config"] == "config.mk"
    assert record["MAKEFLAGS"] == "-j4"
    assert record["CXX"] == "g++"
    assert record["CXX_ORIGIN"] == "command line"
    assert record["USE_BLAS"] == "openblas"
    assert record["USE_CUDA"] == "0"
    assert record["USE_MKLDNN"] == "1"
    assert record["INTGEMM_PATH"] == "3rdparty/intgemm"
    assert record["USE_LAPACK_PATH"] == "/usr/lib/x86_64-linux-gnu"
    assert runs["after_first"]["history"] == ["build"]
    assert len(runs["after_first"]["stamp"]) == 64
    assert runs["after_first"]["log"].startswith("labrig: make -j4 CXX=g++")
    # One task follows the build (no include per poll), and its last word counts both stages.
    followed = runs["first"].result("ws", "mxnet : Follow the build")
    assert followed["progress"].startswith(
        "oneDNN (done) objects 3/3; MXNet objects 3/3; last log line:"
    ), followed
    assert "ws: MXNet build finished: oneDNN (done) objects 3/3" in runs["first"].stdout


def test_same_inputs_skip_the_build(runs):
    assert runs["second"].failure("ws") is None, runs["second"].failure("ws")
    assert runs["second"].stats["ws"]["changed"] == 0
    assert runs["after_second"]["history"] == ["build"]


def test_a_changed_config_cleans_and_rebuilds(runs):
    assert runs["third"].failure("ws") is None, runs["third"].failure("ws")
    assert _history(runs["src"]) == ["build", "clean", "build"]
    record = json.loads((runs["src"] / "build" / "labrig-stand-in-make-vars.json").read_text())
    assert record["USE_BLAS"] == "atlas"
    assert _built_stamp(runs["src"]) != runs["after_first"]["stamp"]


def test_a_moved_tag_is_refused_before_anything_is_built(runs):
    message = runs["first"].failure_message("moved_tag")
    assert f"is commit {runs['moved']}" in message
    assert f"pins {runs['reviewed']}" in message
    assert not (runs["workdir"] / "moved_tag" / "src" / "config.mk").exists()


def test_a_failed_build_shows_the_end_of_its_log_and_leaves_no_stamp(runs):
    message = runs["first"].failure_message("broken_build")
    assert "MXNet build failed" in message
    assert "No rule to make target 'no-such-target'" in message
    assert runs["hosts"]["broken_build"]["mxnet_build_log"] in message
    assert _built_stamp(runs["workdir"] / "broken_build" / "src") == ""


def test_cuda_12_is_refused(runs):
    message = runs["first"].failure_message("cuda_12")
    assert "nvcc 12.2" in message
    assert "CUDA 11.x only" in message


def test_make_targets_build_only_those_objects(runs):
    assert runs["first"].failure("objects") is None, runs["first"].failure("objects")
    src = runs["workdir"] / "objects" / "src"
    built = sorted(path.name for path in (src / "build" / "src").iterdir())
    assert built == ["engine.o", "operator.o"]
    assert not (src / "lib" / "libmxnet.so").exists()
    log = Path(runs["hosts"]["objects"]["mxnet_build_log"]).read_text()
    assert log.startswith("labrig: make -j4 CXX=g++ build/src/engine.o build/src/operator.o at ")


def test_the_cuda_build_compiler_is_the_releases_newest_gcc_11_or_older(tmp_path):
    """nvcc 11 refuses GCC newer than 11; Ubuntu 20.04 has no g++-11: its g++-9, by the per-release
    table, for CXX, the build dependencies and the stamp alike."""
    from role_support import DEBIAN12, UBUNTU20, run_tasks

    debian13 = {**DEBIAN12, "version": "13", "codename": "trixie"}

    common = {"labrig_use_cuda": True, "mxnet_install_method": "source", "labrig_blas": "openblas"}
    hosts = {
        "focal": {**common, "labrig_platform": UBUNTU20},
        "bookworm": {**common, "labrig_platform": DEBIAN12},
        "cpu": {**common, "labrig_platform": UBUNTU20, "labrig_use_cuda": False},
        "asked": {**common, "labrig_platform": UBUNTU20, "cuda_host_compiler": "g++-8"},
        # Debian 13's default GCC 14 is newer than MXNet 1.9.1 was proved with: its g++-12.
        "trixie_cpu": {**common, "labrig_platform": debian13, "labrig_use_cuda": False},
    }
    task = {
        "ansible.builtin.include_role": {
            "name": "mxnet",
            "tasks_from": "config.yml",
            "public": True,
        }
    }

    run = run_tasks(tmp_path, [task], hosts, report_vars=("__mxnet_cxx",))

    compilers = {host: run.value(host, "__mxnet_cxx") for host in hosts}
    assert compilers == {
        "focal": "g++-9",
        "bookworm": "g++-11",
        "cpu": "g++",
        "asked": "g++-8",
        "trixie_cpu": "g++-12",
    }
