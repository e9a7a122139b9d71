"""One build per configuration (the mxnet role's share.yml, publish.yml, shared.yml and its
mxnet_artifact action), on local hosts against the STAND-IN for MXNet's build system
(tests/fleet/stand_in_mxnet): hosts with the same build stamp get one build, the others install
its wheel from the controller's artifact cache; another stamp builds its own; a cached build is
never built again; a corrupt or mismatched artifact is refused, set aside and rebuilt, never
installed."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from role_support import REPO, load_stand_in_generator, local_inventory, run_playbook

stand_in_module = load_stand_in_generator()

_spec = importlib.util.spec_from_file_location(
    "labrig_mxnet_artifact", REPO / "roles" / "mxnet" / "action_plugins" / "mxnet_artifact.py"
)
artifact = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = artifact
_spec.loader.exec_module(artifact)
_spec = importlib.util.spec_from_file_location(
    "labrig_mxnet_wheel", REPO / "roles" / "mxnet" / "library" / "mxnet_wheel.py"
)
wheel_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = wheel_module
_spec.loader.exec_module(wheel_module)

FACTS = {"processor_vcpus": 2, "memory_mb": {"nocache": {"free": 8192}}}


def _play() -> dict:
    role = "mxnet"
    return {
        "name": "share one build",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {"name": "Pretend cores and memory", "ansible.builtin.set_fact": FACTS},
            *[
                {
                    "name": f"Role {step}",
                    "ansible.builtin.include_role": {"name": role, "tasks_from": f"{step}.yml"},
                }
                for step in ("config", "stamp", "share")
            ],
            # As the role's main.yml: a host that installs another host's build fetches nothing.
            *[
                {
                    "name": f"Role {step}",
                    "ansible.builtin.include_role": {"name": role, "tasks_from": f"{step}.yml"},
                    "when": "not __mxnet_from_artifact | bool",
                }
                for step in ("source", "build")
            ],
            {
                "name": "Role publish",
                "ansible.builtin.include_role": {"name": role, "tasks_from": "publish.yml"},
                "when": "__mxnet_builds_here | bool",
            },
            {
                "name": "Make the venv",
                "ansible.builtin.command": "{{ ansible_python_interpreter }} -m venv "
                "{{ mxnet_venv }}",
                "args": {"creates": "{{ mxnet_venv }}/bin/python"},
                "when": "__mxnet_from_artifact | bool",
            },
            {
                "name": "Role shared",
                "ansible.builtin.include_role": {"name": role, "tasks_from": "shared.yml"},
                "when": "__mxnet_from_artifact | bool",
            },
        ],
    }


def _host(workdir: Path, stand_in, name: str, **overrides) -> dict:
    return {
        "mxnet_git_repo": stand_in.url,
        "mxnet_git_commit": stand_in.commit,
        "mxnet_src_dir": str(workdir / name / "src"),
        # config.mk names the venv's python (PYTHON): one path, as on a lab's identical hosts.
        "mxnet_venv": str(workdir / "venv"),
        "mxnet_wheel_cache": str(workdir / name / "wheels"),
        "mxnet_build_log": str(workdir / name / "log" / "mxnet-build.log"),
        "mxnet_artifact_cache": str(workdir / "artifacts"),
        "mxnet_build_progress_interval": 1,
        "mxnet_use_ccache": False,
        "mxnet_owner": Path.home().owner(),
        "labrig_blas": "openblas",
        "labrig_use_cuda": False,
        **overrides,
    }


def _built(host: dict) -> bool:
    return (Path(host["mxnet_src_dir"]) / "stand-in-history.log").exists()


def _installed(host: dict) -> dict:
    """The installed binding's build record and where its libmxnet.so came from."""
    script = (
        "import json, mxnet; "
        "print(json.dumps(dict(blas=mxnet.build_record()['USE_BLAS'], lib=mxnet.library_path())))"
    )
    found = subprocess.run(
        [f"{host['mxnet_venv']}/bin/python", "-c", script],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    return json.loads(found.stdout)


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    """Run 1: a, b (the designated build host) and c with one configuration, d with another.
    Run 2: a fresh host e with a's configuration. Run 3: the cached wheel corrupted, a b c again."""
    workdir = tmp_path_factory.mktemp("mxnet-share")
    stand_in = stand_in_module.create(workdir / "stand-in")
    hosts = {name: _host(workdir, stand_in, name, mxnet_build_host="b") for name in ("a", "b", "c")}
    # d trusts b too, but b does not share its configuration: d builds its own, and shares nothing.
    hosts["d"] = _host(workdir, stand_in, "d", labrig_blas="atlas", mxnet_build_host="b")
    # One at a time: the local "hosts" share one venv path (forks=1 keeps the linear order).
    first = run_playbook(workdir / "run1", [_play()], local_inventory(hosts), "--forks", "1")
    state = {"built": {name: _built(host) for name, host in hosts.items()}}
    state["artifacts"] = sorted(p.name for p in (workdir / "artifacts").iterdir())
    hosts["e"] = _host(workdir, stand_in, "e", mxnet_build_host="b")
    second = run_playbook(workdir / "run2", [_play()], local_inventory({"e": hosts["e"]}))
    state["e_built"] = _built(hosts["e"])
    stamp = first.fact("a", "__mxnet_build_stamp")
    (cached,) = (workdir / "artifacts" / stamp).glob("*.whl")
    good = cached.read_bytes()
    cached.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    trio = {name: hosts[name] for name in ("a", "b", "c")}
    third = run_playbook(workdir / "run3", [_play()], local_inventory(trio), "--forks", "1")
    return {
        "workdir": workdir,
        "hosts": hosts,
        "stamp": stamp,
        "good": good,
        "cached": cached,
        "first": first,
        "second": second,
        "third": third,
        "state": state,
    }


def test_one_configuration_is_built_once_and_installed_on_the_others(share):
    first, hosts = share["first"], share["hosts"]
    for name in "abcd":
        assert first.failure(name) is None, (name, first.failure(name))
    assert share["state"]["built"] == {"a": False, "b": True, "c": False, "d": True}
    stamps = {name: first.fact(name, "__mxnet_build_stamp") for name in "abcd"}
    assert stamps["a"] == stamps["b"] == stamps["c"] != stamps["d"]
    # Only the trusted build host publishes: d's own build stays on d.
    assert share["state"]["artifacts"] == [stamps["a"]]
    for name in "ac":
        installed = _installed(hosts[name])
        assert installed["blas"] == "openblas"
        assert installed["lib"].startswith(hosts[name]["mxnet_venv"]), installed
    assert f"a: MXNet build {stamps['a'][:12]} built by b in this run" in first.stdout
    # The compiler is named by its versioned package (installed, or apt's candidate), so a host
    # without a compiler gets the stamp of one that has it.
    assert re.fullmatch(r"g\+\+-[0-9]+ [0-9][^ ]*", first.fact("a", "__mxnet_cxx_package"))
    # The hosts that install the shared build fetch no source (and install no build dependencies).
    assert [name for name in "abcd" if Path(hosts[name]["mxnet_src_dir"]).exists()] == ["b", "d"]


def test_the_artifact_is_the_wheel_of_the_stamp_with_its_sha256_beside_it(share):
    folder = share["workdir"] / "artifacts" / share["stamp"]
    (wheel,) = folder.glob("*.whl")
    assert wheel.name == f"mxnet-1.9.1+labrig.{share['stamp'][:12]}-py3-none-linux_x86_64.whl"
    assert (folder / f"{wheel.name}.sha256").read_text() == (
        f"{artifact.sha256_of(wheel)}  {wheel.name}\n"
    )
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "mxnet/libmxnet.so" in names
    assert artifact.stamp_in_wheel(wheel) == share["stamp"]


def test_a_configuration_in_the_cache_is_never_built_again(share):
    second = share["second"]
    assert second.failure("e") is None, second.failure("e")
    assert share["state"]["e_built"] is False
    assert second.fact("e", "__mxnet_artifact")["state"] == "valid"
    assert _installed(share["hosts"]["e"])["blas"] == "openblas"


def test_a_corrupt_artifact_is_set_aside_and_rebuilt(share):
    third = share["third"]
    for name in "abc":
        assert third.failure(name) is None, (name, third.failure(name))
    assert third.fact("a", "__mxnet_artifact")["state"] == "refused"
    assert "not the recorded" in third.fact("a", "__mxnet_artifact")["reason"]
    refused = share["workdir"] / "artifacts" / f"{share['stamp']}.refused"
    assert refused.is_dir()
    # b still has the finished build in its tree: packaged again, not compiled again.
    history = (Path(share["hosts"]["b"]["mxnet_src_dir"]) / "stand-in-history.log").read_text()
    assert [line.split()[0] for line in history.splitlines()] == ["build"]
    assert share["cached"].read_bytes() == share["good"]


def _record(
    folder: Path,
    stamp: str,
    data: bytes | None = None,
    extra: tuple[str, ...] = (),
    publisher: str = "b",
) -> Path:
    folder.mkdir(parents=True)
    name = wheel_module.wheel_name("1.9.1", stamp, "x86_64")
    wheel = folder / name
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mxnet/__init__.py", "")
        archive.writestr(f"mxnet-1.9.1.dist-info/{artifact.STAMP_FILE}", f"{stamp}\n")
        for entry in extra:
            archive.writestr(entry, "import os; os.system('id > /tmp/owned')\n")
    (folder / artifact.PUBLISHER_FILE).write_text(f"{publisher}\n")
    (folder / f"{name}.sha256").write_text(f"{artifact.sha256_of(wheel)}  {name}\n")
    if data is not None:
        wheel.write_bytes(data)
    return wheel


def test_inspect_tells_valid_absent_corrupt_and_mismatched_apart(tmp_path):
    stamp, other = "1" * 64, "2" * 64
    assert artifact.inspect(tmp_path / stamp, stamp, "b").state == "absent"
    _record(tmp_path / "good" / stamp, stamp)
    assert artifact.inspect(tmp_path / "good" / stamp, stamp, "b").valid
    _record(tmp_path / "corrupt" / stamp, stamp, data=b"not the wheel")
    corrupt = artifact.inspect(tmp_path / "corrupt" / stamp, stamp, "b")
    assert corrupt.state == "refused" and "not the recorded" in corrupt.reason
    # A wheel of another build filed under this stamp (a copied directory, a renamed one).
    _record(tmp_path / "mismatch" / stamp, other)
    mismatch = artifact.inspect(tmp_path / "mismatch" / stamp, stamp, "b")
    assert mismatch.state == "refused" and f"carries build stamp {other}" in mismatch.reason
    aside = artifact.set_aside(tmp_path / "mismatch" / stamp)
    assert aside.name == f"{stamp}.refused" and not (tmp_path / "mismatch" / stamp).exists()


def test_publish_refuses_a_wheel_that_changed_on_the_way(tmp_path):
    stamp = "3" * 64
    wheel = _record(tmp_path / stamp, stamp)
    (tmp_path / stamp / f"{wheel.name}.sha256").unlink()
    with pytest.raises(ValueError, match="reached the controller with sha256"):
        artifact.publish(tmp_path / stamp, stamp, wheel.name, "0" * 64, "b")
    assert not wheel.exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("mxnet-labrig-owned.pth",), "a .pth file, which Python runs at start-up"),
        (("mxnet/../../evil.py",), "an entry outside the package"),
        (("mxnet-1.9.1.data/scripts/pip",), "not the mxnet package or its dist-info"),
        (("mxnet-1.9.1.dist-info/entry_points.txt",), "not the mxnet package or its dist-info"),
    ],
)
def test_a_build_host_cannot_ship_code_that_runs_at_another_hosts_start_up(tmp_path, extra, named):
    """A rooted build host can match another host's stamp (its inputs are host-reported): what it
    ships is the mxnet package and its dist-info, or nothing is published or installed."""
    stamp = "5" * 64
    wheel = _record(tmp_path / "cached" / stamp, stamp, extra=extra)
    found = artifact.inspect(tmp_path / "cached" / stamp, stamp, "b")
    assert found.state == "refused" and named in found.reason, found
    fetched = tmp_path / "fetched" / stamp
    fetched.mkdir(parents=True)
    (fetched / wheel.name).write_bytes(wheel.read_bytes())
    with pytest.raises(ValueError, match=named):
        artifact.publish(fetched, stamp, wheel.name, artifact.sha256_of(wheel), "b")
    assert not list(fetched.iterdir())


def test_only_the_trusted_build_hosts_artifact_counts_and_names_are_the_controllers(tmp_path):
    stamp = "6" * 64
    _record(tmp_path / stamp, stamp, publisher="c")
    found = artifact.inspect(tmp_path / stamp, stamp, "b")
    assert found.state == "refused" and "published by c, not the trusted build host b" in (
        found.reason
    )
    assert artifact.inspect(tmp_path / stamp, stamp, "").state == "refused"
    # A name the build host chose is never joined to a controller path.
    with pytest.raises(ValueError, match="not a wheel file name"):
        artifact.publish(tmp_path / stamp, stamp, "../../../root/.bashrc", "0" * 64, "b")
    assert artifact.wheel_name("1.9.1", stamp, "x86_64") == (
        wheel_module.wheel_name("1.9.1", stamp, "x86_64")
    )


def test_the_host_refuses_a_shared_wheel_that_is_not_the_recorded_one(tmp_path):
    """The cache changed between its check and the copy: pip's hash check stops the install."""
    stamp = "4" * 64
    wheel = _record(tmp_path / "artifacts" / stamp, stamp, data=b"tampered")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    play = {
        "name": "install a tampered shared wheel",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Role shared",
                "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "shared.yml"},
            }
        ],
    }
    host = {
        "__mxnet_build_stamp": stamp,
        "__mxnet_builder": "ws1",
        "mxnet_build_host": "ws1",
        "mxnet_artifact_cache": str(tmp_path / "artifacts"),
        "mxnet_venv": str(venv),
        "mxnet_wheel_cache": str(tmp_path / "wheels"),
    }
    run = run_playbook(tmp_path / "run", [play], local_inventory({"ws2": host}))
    message = run.failure_message("ws2") or ""
    assert f"refused the shared wheel {wheel.name}" in message, message
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list"], capture_output=True, text=True
    )
    assert "mxnet" not in listing.stdout
