"""The mxnet role on ONE real host of the test fleet.

1. Source method against the STAND-IN for MXNet's build system (tests/fleet/stand_in_mxnet; not
   MXNet: a real 1.9.1 build takes CPU-hours): clone at tag by URL, verify the commit, render
   config.mk, make -j N, stamp, install the binding into a venv; a second run changes nothing; a
   changed BLAS cleans, rebuilds and reinstalls.
2. One build per configuration (the same stand-in) on three hosts: one builds and shares a wheel
   through the controller's artifact cache, the two others install it; a host given another
   CUDA_ARCH then builds its own.
3. Pip method: the real CPU `mxnet==1.9.1` wheel and numpy 1.23.5 from the controller's
   wheelhouse (the host reaches no index) into /opt/labrig/venv; MXNet computes there and its
   features are the ones written to 50-framework.yml.

Needs LABRIG_FLEET_INVENTORY (an inventory written by tests/fleet/fleet.sh) and optionally
LABRIG_FLEET_HOST (default: the first host in it). Skipped, loudly, without them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "labrig_role_support", REPO / "tests" / "roles" / "role_support.py"
)
helpers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = helpers
_spec.loader.exec_module(helpers)
stand_in_generator = helpers.load_stand_in_generator()

INVENTORY = os.environ.get("LABRIG_FLEET_INVENTORY", "")
STAND_IN_ON_HOST = "/srv/labrig-stand-in"
STAND_IN_VENV = "/opt/labrig/stand-in-venv"
STAND_IN_SRC = "/opt/labrig/src/stand-in-mxnet"

pytestmark = pytest.mark.skipif(
    not INVENTORY,
    reason="NOT RUN: LABRIG_FLEET_INVENTORY is unset, so the mxnet role was not proved on a real "
    "fleet host (start one with tests/fleet/fleet.sh up; export LABRIG_FLEET_INVENTORY=<its "
    "inventory> [LABRIG_FLEET_HOST=<host>])",
)


def _fleet_host() -> str:
    if os.environ.get("LABRIG_FLEET_HOST"):
        return os.environ["LABRIG_FLEET_HOST"]
    listing = subprocess.run(
        [str(helpers.BIN / "ansible-inventory"), "-i", INVENTORY, "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    hosts = sorted(json.loads(listing.stdout)["_meta"]["hostvars"])
    assert hosts, f"no hosts in {INVENTORY}"
    return hosts[0]


def _why(run, host: str) -> str:
    failure = run.failure(host) or {}
    return "\n".join(
        str(failure.get(key, "")) for key in ("msg", "stderr", "stdout", "module_stderr")
    )


def _apt_proxy_task() -> dict:
    # The fleet's hosts reach packages only through the harness's apt cache.
    return {
        "name": "Point apt at the fleet's package cache",
        "ansible.builtin.copy": {
            "dest": "/etc/apt/apt.conf.d/01labrig-test-proxy",
            "content": 'Acquire::http::Proxy "{{ labrig_apt_proxy }}";\n',
            "mode": "0644",
        },
        "when": "labrig_apt_proxy is defined",
    }


def _stand_in_play(
    host: str, archive: Path, commit: str, fresh=False, pre_tasks=(), **overrides
) -> dict:
    # Each test session generates a new stand-in (a new commit): start from an empty tree and venv.
    reset = [
        {
            "name": "Remove what an earlier session left",
            "ansible.builtin.file": {"path": "{{ item }}", "state": "absent"},
            "loop_control": {"label": "{{ item }}"},
            "loop": [STAND_IN_SRC, STAND_IN_VENV],
        }
    ]
    return {
        "name": "mxnet role, source method, against the stand-in",
        "hosts": host,
        "become": True,
        "pre_tasks": [
            *(reset if fresh else []),
            _apt_proxy_task(),
            {
                "name": "Place the stand-in repository on the host",
                "ansible.builtin.unarchive": {
                    "src": str(archive),
                    "dest": STAND_IN_ON_HOST.rsplit("/", 1)[0],
                    "creates": f"{STAND_IN_ON_HOST}/{commit}/mxnet.git/HEAD",
                },
            },
            *pre_tasks,
        ],
        "roles": [
            {
                "role": "mxnet",
                "vars": {
                    "mxnet_install_method": "source",
                    "mxnet_git_repo": f"file://{STAND_IN_ON_HOST}/{commit}/mxnet.git",
                    "mxnet_git_commit": commit,
                    "mxnet_src_dir": STAND_IN_SRC,
                    "mxnet_venv": STAND_IN_VENV,
                    "mxnet_build_progress_interval": 5,
                    # The stand-in compiles nothing; OpenCV's -dev packages would only cost time.
                    "mxnet_use_opencv": False,
                    "mxnet_expectations_dir": "/etc/labrig/stand-in-expectations.d",
                    "labrig_blas": "openblas",
                    # A CPU build unless a test asks for CUDA (the stack's default is the GPU one).
                    "labrig_use_cuda": False,
                    **overrides,
                },
            }
        ],
    }


def _probe(host: str, workdir: Path, command: str) -> str:
    play = {
        "name": "probe",
        "hosts": host,
        "become": True,
        "gather_facts": False,
        "tasks": [
            {
                "name": "Probe",
                "ansible.builtin.command": command,
                "register": "probe",
                "changed_when": False,
            }
        ],
    }
    run = helpers.run_playbook(workdir, [play], Path(INVENTORY))
    assert run.returncode == 0, _why(run, host)
    return run.host_results(host)[-1][1]["stdout"]


@pytest.fixture(scope="module")
def host():
    return _fleet_host()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> str:
    """The controller's artifact cache of shared builds, kept across this module's runs."""
    return str(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def stand_in_archive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stand-in")
    stand_in = stand_in_generator.create(workdir / "labrig-stand-in")
    archive = workdir / "labrig-stand-in.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(stand_in.url, arcname=f"labrig-stand-in/{stand_in.commit}/mxnet.git")
    return archive, stand_in.commit


def test_source_method_builds_stamps_installs_skips_and_rebuilds(
    host, stand_in_archive, artifacts, tmp_path
):
    archive, commit = stand_in_archive
    timeout = 1800  # the first run installs build-essential through the fleet's cache

    first = helpers.run_playbook(
        tmp_path / "first",
        [_stand_in_play(host, archive, commit, fresh=True, mxnet_artifact_cache=artifacts)],
        Path(INVENTORY),
        timeout=timeout,
    )
    assert first.returncode == 0, _why(first, host)
    record = json.loads(
        _probe(
            host,
            tmp_path / "probe1",
            f"{STAND_IN_VENV}/bin/python -c 'import json, mxnet; "
            "print(json.dumps(dict(mxnet.build_record(), version=mxnet.__version__, "
            "stand_in=mxnet.STAND_IN)))'",
        )
    )
    assert record["stand_in"] is True
    assert record["version"] == "1.9.1+labrig.standin"
    assert record["USE_BLAS"] == "openblas"
    assert record["USE_LAPACK_PATH"] == "/usr/lib/x86_64-linux-gnu"
    assert record["CXX"] == "g++"
    assert record["MAKEFLAGS"].startswith("-j")
    assert int(record["MAKEFLAGS"][2:]) >= 1

    second = helpers.run_playbook(
        tmp_path / "second",
        [_stand_in_play(host, archive, commit, mxnet_artifact_cache=artifacts)],
        Path(INVENTORY),
        timeout=timeout,
    )
    assert second.returncode == 0, _why(second, host)
    assert second.stats[host]["changed"] == 0, [
        name for name, result in second.host_results(host) if result.get("changed")
    ]

    third = helpers.run_playbook(
        tmp_path / "third",
        [
            _stand_in_play(
                host, archive, commit, labrig_blas="atlas", mxnet_artifact_cache=artifacts
            )
        ],
        Path(INVENTORY),
        timeout=timeout,
    )
    assert third.returncode == 0, _why(third, host)
    changed = [name for name, result in third.host_results(host) if result.get("changed")]
    assert any(name.endswith("Clean the objects of a build with other inputs") for name in changed)
    assert any(name.endswith("Install the built binding into the virtualenv") for name in changed)
    history = _probe(host, tmp_path / "probe3", f"cat {STAND_IN_SRC}/stand-in-history.log")
    assert [line.split()[0] for line in history.splitlines()] == ["build", "clean", "build"]
    record = json.loads(
        _probe(
            host,
            tmp_path / "probe4",
            f"{STAND_IN_VENV}/bin/python -c "
            "'import json, mxnet; print(json.dumps(mxnet.build_record()))'",
        )
    )
    assert record["USE_BLAS"] == "atlas"


def test_an_interrupted_build_is_followed_to_its_end_never_made_twice(
    host, stand_in_archive, tmp_path
):
    """Ctrl-C on the controller mid-build leaves make running on the host; the next run follows
    that make to its end instead of starting a second one in the same tree."""
    archive, commit = stand_in_archive
    # `make slow`: ten seconds per object, a oneDNN stage first, as in 1.9.1.
    play = _stand_in_play(
        host, archive, commit, mxnet_make_target="slow", mxnet_build_progress_interval=2
    )
    command, env = helpers.playbook_command(tmp_path / "first", [play], Path(INVENTORY))
    output = tmp_path / "first.out"
    with output.open("wb") as out:
        first = subprocess.Popen(
            command,
            cwd=tmp_path / "first",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 900
        while "MXNet build running" not in output.read_text():
            assert first.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(1)
    finally:
        # Ctrl-C: the whole process group of the controller, as a terminal sends it.
        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=120)
    following = output.read_text()
    assert "MXNet build running: oneDNN objects" in following, following[-3000:]
    still = _probe(
        host,
        tmp_path / "probe1",
        f"sh -c 'flock -n {STAND_IN_SRC}/.labrig-build.lock true && echo free || echo held'",
    )
    assert "held" in still, "make did not outlive the interrupted controller"

    second = helpers.run_playbook(tmp_path / "second", [play], Path(INVENTORY), timeout=1800)

    assert second.returncode == 0, _why(second, host)
    assert f"{host}: following the MXNet build an earlier run started" in second.stdout
    started = [r for name, r in second.host_results(host) if "Start make in the background" in name]
    assert started and all(result.get("skipped") for result in started), started
    objects = _probe(host, tmp_path / "probe2", f"cat {STAND_IN_SRC}/stand-in-objects.log").split(
        "\n"
    )
    built = [line.split()[0] for line in objects if line.strip()]
    makes = {line.split()[-1] for line in objects if line.strip()}
    assert sorted(built) == sorted(set(built)) and len(built) == 6, objects
    assert len(makes) == 1, f"objects built by more than one make: {objects}"


FAKE_CUDA = "/opt/labrig/stand-in-cuda"


def _fake_nvcc_tasks() -> list[dict]:
    # The stand-in compiles nothing: an nvcc that only names its release makes USE_CUDA=1 and
    # CUDA_ARCH part of config.mk (and so of the build stamp) on the light hosts too.
    folder = {
        "name": "Create the stand-in CUDA directory",
        "ansible.builtin.file": {"path": f"{FAKE_CUDA}/bin", "state": "directory", "mode": "0755"},
    }
    return [
        folder,
        {
            "name": "Place an nvcc that says it is CUDA 11.8",
            "ansible.builtin.copy": {
                "dest": f"{FAKE_CUDA}/bin/nvcc",
                "content": "#!/bin/sh\necho 'Cuda compilation tools, release 11.8, V11.8.89'\n",
                "mode": "0755",
            },
        },
    ]


def _fleet_hosts() -> list[str]:
    listing = subprocess.run(
        [str(helpers.BIN / "ansible-inventory"), "-i", INVENTORY, "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    inventory = json.loads(listing.stdout)
    # The stand-in build runs on the Debian 12 hosts (a Debian 13 one has no Python it may use
    # without the python_runtime role).
    newer = set(inventory.get("debian13", {}).get("hosts", []))
    return sorted(set(inventory["_meta"]["hostvars"]) - newer)


def test_one_build_per_configuration_shared_through_the_artifact_cache(
    stand_in_archive, artifacts, tmp_path
):
    """Three hosts with one configuration: one build, two installs of its wheel. Then the last
    host gets another CUDA_ARCH: it builds its own, the others change nothing."""
    archive, commit = stand_in_archive
    hosts = _fleet_hosts()
    assert len(hosts) >= 3, hosts
    first_host, other_host = hosts[0], hosts[-1]

    def play(other_arch: int, fresh: bool = False) -> dict:
        arch = f"{{{{ [{other_arch}] if inventory_hostname == '{other_host}' else [86] }}}}"
        return _stand_in_play(
            ":".join(hosts),
            archive,
            commit,
            fresh=fresh,
            pre_tasks=_fake_nvcc_tasks(),
            labrig_use_cuda=True,
            cuda_home=FAKE_CUDA,
            mxnet_cuda_arch=arch,
            mxnet_use_ccache=False,
            mxnet_artifact_cache=artifacts,
            # The build host the lab trusts to share its builds; never one chosen by order.
            mxnet_build_host=first_host,
        )

    def probe(host: str, name: str) -> dict:
        script = (
            "import json, mxnet; print(json.dumps(dict(lib=mxnet.library_path(), "
            'arch=mxnet.build_record()[\\"CUDA_ARCH\\"])))'
        )
        found = _probe(
            host,
            tmp_path / f"{name}-{host}",
            f"sh -c 'test -e {STAND_IN_SRC}/stand-in-history.log && echo built || echo none; "
            f"cat {STAND_IN_VENV}/.labrig-mxnet-build-stamp; cd / && "
            f'{STAND_IN_VENV}/bin/python -c "{script}"\'',
        ).splitlines()
        return {"built": found[0] == "built", "stamp": found[1], **json.loads(found[2])}

    started = time.monotonic()
    shared = helpers.run_playbook(
        tmp_path / "shared", [play(86, fresh=True)], Path(INVENTORY), timeout=1800
    )
    shared_s = time.monotonic() - started
    for host in hosts:
        assert shared.returncode == 0, _why(shared, host)
    found = {host: probe(host, "shared") for host in hosts}
    assert [host for host in hosts if found[host]["built"]] == [first_host], found
    assert len({found[host]["stamp"] for host in hosts}) == 1, found
    for host in hosts[1:]:
        assert found[host]["lib"].startswith(f"{STAND_IN_VENV}/lib/"), found[host]
        assert "sm_86" in found[host]["arch"], found[host]
        assert f"{host}: MXNet build {found[host]['stamp'][:12]} built by {first_host}" in (
            shared.stdout
        )

    started = time.monotonic()
    other = helpers.run_playbook(tmp_path / "other", [play(90)], Path(INVENTORY), timeout=1800)
    other_s = time.monotonic() - started
    assert other.returncode == 0, _why(other, other_host)
    again = {host: probe(host, "other") for host in hosts}
    assert again[other_host]["built"] and "sm_90" in again[other_host]["arch"], again
    assert again[other_host]["stamp"] != found[other_host]["stamp"]
    for host in hosts[:-1]:
        assert other.stats[host]["changed"] == 0, [
            name for name, result in other.host_results(host) if result.get("changed")
        ]
    print(
        f"shared build on {len(hosts)} hosts: {shared_s:.0f} s; another CUDA_ARCH: {other_s:.0f} s"
    )


def test_pip_method_installs_the_cpu_wheel_from_the_wheelhouse(host, tmp_path):
    play = {
        "name": "mxnet role, pip method, CPU wheel",
        "hosts": host,
        "become": True,
        "pre_tasks": [_apt_proxy_task()],
        "roles": [
            {"role": "mxnet", "vars": {"mxnet_install_method": "pip", "labrig_use_cuda": False}}
        ],
    }
    first = helpers.run_playbook(tmp_path / "first", [play], Path(INVENTORY), timeout=1200)
    assert first.returncode == 0, _why(first, host)
    second = helpers.run_playbook(tmp_path / "second", [play], Path(INVENTORY), timeout=600)
    assert second.returncode == 0, _why(second, host)
    assert second.stats[host]["changed"] == 0, [
        name for name, result in second.host_results(host) if result.get("changed")
    ]

    script = (
        "import json, mxnet as mx, numpy; "
        "d = (mx.nd.array([1]) + mx.nd.array([2])) * mx.nd.array([3]); "
        "print(json.dumps({'version': mx.__version__, 'numpy': numpy.__version__, "
        "'d': float(d.asscalar()), "
        "'features': {k: v.enabled for k, v in mx.runtime.Features().items()}}))"
    )
    found = json.loads(
        _probe(host, tmp_path / "probe", f'/opt/labrig/venv/bin/python -c "{script}"')
    )
    assert found["version"] == "1.9.1"
    assert found["numpy"] == "1.23.5"
    assert found["d"] == 9.0
    expected = _probe(host, tmp_path / "expect", "cat /etc/labrig/expectations.d/50-framework.yml")
    import yaml

    expectations = yaml.safe_load(expected)
    assert expectations["framework"] == "mxnet"
    for feature, enabled in expectations["mxnet_features"].items():
        assert found["features"][feature] is enabled, feature
