"""What keeps `make provision` safe on a lab in use, run through Ansible on this machine: the guard
(GPU work, logged-in users), the one-run-per-host lock, the refusal to replace a newer driver, what
counts as a network failure, and the end-of-run summary when every host failed.

Nothing here touches the machine outside tmp_path: the guard is pointed at a device file under
tmp_path, the lock file lives there, and apt-cache is a stand-in on PATH. The same behaviours are
proved on real hosts in tests/fleet/test_e2e.py."""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from role_support import BIN, DEBIAN12, REPO, ROLES, local_inventory, run_tasks


def labrig(tasks_from: str, **params) -> dict:
    return {
        "name": f"labrig {tasks_from}",
        "ansible.builtin.include_role": {"name": "labrig", "tasks_from": tasks_from},
        "vars": params,
    }


# --- the guard ------------------------------------------------------------------------------------


@pytest.fixture()
def gpu_job(tmp_path: Path):
    """A process holding a stand-in GPU device file, as a training job holds /dev/nvidia0."""
    device = tmp_path / "dev" / "nvidia0"
    device.parent.mkdir()
    device.write_text("")
    with device.open() as held:
        process = subprocess.Popen(["sleep", "120"], stdin=held)
    try:
        yield device, process
    finally:
        process.kill()
        process.wait()


def _guard(devices: str, **params) -> dict:
    return labrig("guard", __labrig_guard_devices=devices, labrig_guard_step="a test", **params)


def test_gpu_work_stops_the_host_naming_pid_user_and_command(tmp_path: Path, gpu_job) -> None:
    device, process = gpu_job
    devices = str(device.parent / "nvidia*")
    hosts = {"busy": {}, "maintenance": {"labrig_maintenance_ok": True}}

    run = run_tasks(tmp_path / "run", [_guard(devices)], hosts)

    message = run.failure_message("busy") or ""
    assert f"{process.pid} {getpass.getuser()} sleep 120" in message, message
    assert message.startswith("busy: ") and "1 GPU process (" in message, message
    assert message.endswith("rerun with labrig_maintenance_ok=true"), message
    assert run.failure("maintenance") is None, run.stdout[-3000:]
    said = run.result("maintenance", "labrig : Say the host is in use")["msg"]
    assert "going on: labrig_maintenance_ok is true" in said, said


def test_check_mode_only_says_the_host_is_in_use(tmp_path: Path, gpu_job) -> None:
    device, process = gpu_job

    run = run_tasks(
        tmp_path, [_guard(str(device.parent / "nvidia*"))], {"ws": {}}, extra_args=("--check",)
    )

    assert run.failure("ws") is None, run.stdout[-3000:]
    said = run.result("ws", "labrig : Say the host is in use")["msg"]
    assert str(process.pid) in said and "a real run would stop here" in said, said


def test_daemons_that_always_hold_the_gpu_are_not_counted(tmp_path: Path, gpu_job) -> None:
    device, process = gpu_job
    guard = _guard(str(device.parent / "nvidia*"), labrig_guard_ignore_commands=["sleep"])

    run = run_tasks(tmp_path, [guard], {"ws": {}}, report_vars=("labrig_guard_busy",))

    busy = run.value("ws", "labrig_guard_busy")
    assert not any(str(process.pid) in entry for entry in busy), busy


def _hold_device(device: Path, executable: str, *args: str) -> subprocess.Popen:
    with device.open() as held:
        return subprocess.Popen([executable, *args], stdin=held)


def test_a_desktop_on_the_gpu_is_named_apart_from_the_jobs(tmp_path: Path, gpu_job) -> None:
    device, job = gpu_job
    # The display server, by its full path; a user's own program of the same name elsewhere.
    system = tmp_path / "usr" / "lib" / "xorg"
    system.mkdir(parents=True)
    (system / "Xorg").write_bytes(Path(shutil.which("sleep") or "/bin/sleep").read_bytes())
    (system / "Xorg").chmod(0o755)
    renamed = tmp_path / "home" / "Xorg"
    renamed.parent.mkdir()
    renamed.write_bytes((system / "Xorg").read_bytes())
    renamed.chmod(0o755)
    desktop = _hold_device(device, str(system / "Xorg"), "121")
    disguised = _hold_device(device, str(renamed), "122")
    try:
        time.sleep(0.3)
        guard = _guard(
            str(device.parent / "nvidia*"), labrig_guard_desktop_executables=[str(system / "Xorg")]
        )
        run = run_tasks(tmp_path / "run", [guard], {"ws": {}})
    finally:
        for process in (desktop, disguised):
            process.kill()
            process.wait()

    message = run.failure_message("ws") or ""
    me = getpass.getuser()
    assert message.startswith("ws: 2 GPU processes ("), message
    assert (
        f"{job.pid} {me} sleep 120" in message and f"{disguised.pid} {me} {renamed} 122" in message
    )
    assert (
        f"(the desktop holds the GPU too, not counted as a job ({desktop.pid} {me} {system}/Xorg))"
        in message
    ), message


def test_a_desktop_alone_is_an_idle_workstation(tmp_path: Path) -> None:
    device = tmp_path / "dev" / "nvidia0"
    device.parent.mkdir()
    device.write_text("")
    shell = shutil.which("sleep") or "/bin/sleep"
    desktop = _hold_device(device, shell, "120")
    try:
        time.sleep(0.3)
        guard = _guard(str(device.parent / "nvidia*"), labrig_guard_desktop_executables=[shell])
        run = run_tasks(tmp_path / "run", [guard], {"ws": {}}, report_vars=("labrig_guard_busy",))
    finally:
        desktop.kill()
        desktop.wait()

    assert run.failure("ws") is None, run.stdout[-3000:]
    assert run.value("ws", "labrig_guard_busy") == []


def test_a_users_command_line_cannot_write_escapes_to_the_admins_terminal(tmp_path: Path) -> None:
    device = tmp_path / "dev" / "nvidia0"
    device.parent.mkdir()
    device.write_text("")
    job = _hold_device(
        device, sys.executable, "-c", "import time; time.sleep(120)", "\x1b]2;owned\x07\x9b"
    )
    try:
        time.sleep(0.3)
        run = run_tasks(tmp_path / "run", [_guard(str(device.parent / "nvidia*"))], {"ws": {}})
    finally:
        job.kill()
        job.wait()

    message = run.failure_message("ws") or ""
    assert f"{job.pid} " in message and "owned" in message, message
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in message), repr(message)


# --- the lock -------------------------------------------------------------------------------------


def _controller() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _started(pid: int) -> str:
    return subprocess.run(
        ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=True
    ).stdout.strip()


def _run(name: str, pid: int, started: str = "", controller: str = "") -> dict:
    controller = controller or _controller()
    return {
        "run": f"{controller} {pid} {started}",
        "controller": controller,
        "pid": pid,
        "pid_started": started,
        "started": f"2026-12-01T08:0{name}:00Z",
    }


def test_a_second_run_is_refused_naming_the_first_and_a_gone_run_is_taken_over(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "run" / "labrig" / "provision.lock"
    alive = _run("1", os.getpid(), _started(os.getpid()))
    gone = _run("2", 2**22 + 17, "Thu Jan  1 00:00:00 1970")
    elsewhere = _run("3", 4242, "Mon Nov 30 07:00:00 2026", controller="admin@other-controller")
    second = _run("4", os.getppid(), _started(os.getppid()))

    def take(holder_run: dict, mine: dict, wait: int = 0):
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text(json.dumps({**holder_run, "session": ""}))
        host = {"labrig_run": mine, "labrig_lock_file": str(lock), "labrig_lock_wait": wait}
        return run_tasks(tmp_path / holder_run["started"][14:16], [labrig("lock")], {"ws": host})

    refused = take(alive, second)
    message = refused.failure_message("ws") or ""
    assert "another labrig run is provisioning this host" in message, message
    assert f"started {alive['started']} from {alive['controller']}" in message, message
    assert f"ansible-playbook pid {alive['pid']}" in message, message

    # From another controller, with no session to ask logind about: still held.
    assert "from admin@other-controller" in (take(elsewhere, second).failure_message("ws") or "")

    taken = take(gone, second)
    assert taken.failure("ws") is None, taken.stdout[-3000:]
    said = taken.result("ws", "labrig : Say whose lock was taken over")["msg"]
    assert f"started {gone['started']}" in said, said
    assert json.loads(lock.read_text())["run"] == second["run"]

    released = run_tasks(
        tmp_path / "release",
        [labrig("unlock")],
        {"ws": {"labrig_run": alive, "labrig_lock_file": str(lock)}},
    )
    assert released.failure("ws") is None and lock.exists(), "released a lock it did not hold"
    released = run_tasks(
        tmp_path / "release2",
        [labrig("unlock")],
        {"ws": {"labrig_run": second, "labrig_lock_file": str(lock)}},
    )
    assert released.failure("ws") is None and not lock.exists()


def test_a_run_waits_for_the_lock_when_asked(tmp_path: Path) -> None:
    lock = tmp_path / "provision.lock"
    holder = _run("1", os.getpid(), _started(os.getpid()))
    lock.write_text(json.dumps({**holder, "session": ""}))
    mine = _run("2", os.getppid(), _started(os.getppid()))
    # The holder finishes while the second run waits.
    releaser = subprocess.Popen(["sh", "-c", f"sleep 3; rm -f {lock}"])
    try:
        run = run_tasks(
            tmp_path / "wait",
            [labrig("lock")],
            {"ws": {"labrig_run": mine, "labrig_lock_file": str(lock), "labrig_lock_wait": 60}},
        )
    finally:
        releaser.wait()
    assert run.failure("ws") is None, run.stdout[-3000:]
    assert json.loads(lock.read_text())["run"] == mine["run"]


# --- a driver newer than the pinned one -----------------------------------------------------------

PINNED = "535.309.01-0+deb12u1"


def _policy(installed: str) -> str:
    """`apt-cache policy nvidia-driver` with `installed` and the archive's PINNED: apt never makes
    a downgrade the candidate, so a newer installed version is also the candidate."""
    newer = installed != "(none)" and (installed.startswith("999") or ":" in installed)
    archive = (
        f"     {PINNED} 500\n        500 http://mirror.invalid/debian bookworm/non-free Packages\n"
    )
    mine = (
        f" *** {installed} 100\n        100 /var/lib/dpkg/status\n" if installed != "(none)" else ""
    )
    return (
        f"nvidia-driver:\n  Installed: {installed}\n  Candidate: {installed if newer else PINNED}\n"
        "  Version table:\n" + (mine + archive if newer else archive + mine)
    )


@pytest.mark.parametrize(
    ("installed", "extra", "check", "outcome"),
    [
        ("999.0-1", {}, False, "refused"),
        ("999.0-1", {"nvidia_driver_allow_downgrade": True}, False, "ok"),
        ("999.0-1", {}, True, "drift"),
        ("1:470.239.06-1", {}, False, "refused"),  # an epoch makes it newer, as dpkg says
        ("470.239.06-1", {}, False, "ok"),
        ("(none)", {}, False, "ok"),
    ],
)
def test_a_newer_driver_is_never_replaced_silently(
    tmp_path: Path, installed: str, extra: dict, check: bool, outcome: str
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-cache").write_text("#!/bin/sh\ncat <<'EOF'\n" + _policy(installed) + "EOF\n")
    (fake / "apt-cache").chmod(0o755)
    task = {
        "name": "nvidia_driver version",
        "ansible.builtin.include_role": {
            "name": "nvidia_driver",
            "tasks_from": "version.yml",
            "apply": {"environment": {"PATH": f"{fake}:{os.environ['PATH']}"}},
        },
    }
    host = {
        "labrig_platform": DEBIAN12,
        "nvidia_driver_plan": {"versioned": ["nvidia-driver", "nvidia-kernel-dkms"]},
        **extra,
    }

    run = run_tasks(
        tmp_path / "run", [task], {"ws": host}, extra_args=("--check",) if check else ()
    )

    message = run.failure_message("ws")
    if outcome == "refused":
        assert (
            message
            and f"nvidia-driver {installed} is installed, newer than the pinned {PINNED}" in message
        )
        assert "nvidia_driver_allow_downgrade: true" in message
    else:
        assert message is None, run.stdout[-3000:]
    if outcome == "drift":
        drift = run.result("ws", "nvidia_driver : Show a newer driver than the pinned one as drift")
        assert drift["changed"] and "provision would stop here" in drift["msg"], drift


# --- network failures -----------------------------------------------------------------------------


def _network_test():
    path = ROLES / "labrig" / "test_plugins" / "network.py"
    spec = importlib.util.spec_from_file_location("labrig_network", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.labrig_network_failure


@pytest.mark.parametrize(
    ("result", "network"),
    [
        (
            {
                "failed": True,
                "msg": "'/usr/bin/apt-get -y install libatlas3-base' failed: E: Failed to fetch "
                "http://deb.invalid/pool/main/a/atlas/libatlas3-base.deb Could not connect to "
                "10.203.7.1:3142 (10.203.7.1). - connect (111: Connection refused)",
            },
            True,
        ),
        ({"failed": True, "msg": "Failed to update apt cache after 1 retries: "}, True),
        # A download of the lists that overran apt_sources_update_timeout (apt_sources), given up
        # on by the controller or killed by the host's async_wrapper.
        (
            {
                "failed": True,
                "msg": "async task did not complete within the requested time - 600s",
            },
            True,
        ),
        ({"failed": True, "msg": "Timeout exceeded", "child_pid": 4242}, True),
        # The same, killed by apt_sources' files/apt_update.py.
        (
            {
                "failed": True,
                "msg": "non-zero return code",
                "rc": 124,
                "stderr": "apt-get update: timeout exceeded after 5 s; killed with its download "
                "methods",
            },
            True,
        ),
        ({"failed": True, "msg": "E: Unable to locate package nvidia-drvier"}, False),
        (
            {
                "failed": True,
                "msg": "Failed to update apt cache: W:Some index files failed to download",
            },
            True,
        ),
        ({"failed": True, "msg": "No package matching 'nvidia-drvier' is available"}, False),
        (
            {
                "failed": True,
                "msg": "Request failed",
                "stderr": "<urlopen error [Errno 111] refused>",
            },
            True,
        ),
        (
            {
                "failed": True,
                "msg": "fatal: unable to access 'https://git.invalid/': Could not resolve",
            },
            True,
        ),
        ({"failed": False, "msg": "Connection refused"}, False),
    ],
)
def test_what_counts_as_the_network_failing(result: dict, network: bool) -> None:
    assert _network_test()(result) is network


# --- the summary when every host failed, and rollouts -------------------------------------------


def test_a_stopped_rollout_still_ends_with_the_summary(tmp_path: Path) -> None:
    # Two "hosts" that are this controller: preflight refuses each (provisioning the controller is
    # never a side effect), so with BATCH=1 the first batch fails whole and the rollout stops.
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            local_inventory(
                {"ws01": {"ansible_host": "127.0.0.1"}, "ws02": {"ansible_host": "127.0.0.1"}}
            )
        )
    )
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "provision",
            f"INVENTORY={inventory}",
            "BATCH=1",
            "MAX_FAIL=0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{os.environ['PATH']}"},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    summary = output.split("LABRIG SUMMARY", 1)[-1]
    assert (
        "ws01: Refuse to provision the controller itself unless asked: ws01 is this controller"
        in summary
    ), output
    assert "ws02: not run: the rollout stopped before its batch" in summary, output


# --- the MOK password ------------------------------------------------------------------------


def test_the_mok_password_never_reaches_a_command_line(tmp_path: Path) -> None:
    password = "s3cret-enrolment-word"
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls"
    # Stand-ins that record their command lines and environment (what `ps` and /proc show).
    for tool, output in (("openssl", "$6$salt$hash"), ("mokutil", "")):
        (fake / tool).write_text(
            "#!/bin/sh\n"
            f'echo "{tool} $*" >> {calls}\n'
            f"env >> {calls}\n"
            f"cat > {tmp_path}/{tool}.stdin\n"
            f"echo '{output}'\n"
        )
        (fake / tool).chmod(0o755)
    task = {
        "name": "nvidia_driver MOK queue",
        "ansible.builtin.include_role": {
            "name": "nvidia_driver",
            "tasks_from": "mok_queue.yml",
            "apply": {"environment": {"PATH": f"{fake}:{os.environ['PATH']}"}},
        },
    }
    host = {"nvidia_driver_mok_password": password, "nvidia_driver_mok_key_dir": str(tmp_path)}

    run = run_tasks(tmp_path / "run", [task], {"ws": host})

    assert run.failure("ws") is None, run.stdout[-3000:]
    recorded = calls.read_text()
    assert "openssl passwd -6 -stdin" in recorded and "mokutil --import" in recorded, recorded
    assert "--hash-file" in recorded, recorded
    assert password not in recorded, "the password was on a command line or in the environment"
    assert (tmp_path / "openssl.stdin").read_text() == password
    assert password not in run.stdout


# --- apt keys ---------------------------------------------------------------------------------

NVIDIA_KEY = "EB693B3035CD5710E231E123A4B469963BF863CC"
OTHER_KEY = "0123456789ABCDEF0123456789ABCDEF01234567"
SUBKEY = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"


def _key(fingerprint: str, subkey: str = "") -> list[str]:
    """One key as `gpg --with-colons --show-keys` lists it."""
    lines = [
        f"pub:-:4096:1:{fingerprint[-16:]}:1649864094:::-:::scSC::::::23::0:",
        f"fpr:::::::::{fingerprint}:",
        "uid:-::::1649864094::0::cudatools <cudatools@nvidia.com>::::::::::0:",
    ]
    if subkey:
        lines += [
            f"sub:-:4096:1:{subkey[-16:]}:1649864094::::::e::::::23:",
            f"fpr:::::::::{subkey}:",
        ]
    return lines


@pytest.mark.parametrize(
    ("listing", "accepted"),
    [
        (_key(NVIDIA_KEY), True),
        (_key(NVIDIA_KEY, SUBKEY), True),
        # The expected key and another: signed-by would trust both.
        (_key(NVIDIA_KEY) + _key(OTHER_KEY), False),
        (_key(OTHER_KEY) + _key(NVIDIA_KEY), False),
        (_key(OTHER_KEY, NVIDIA_KEY), False),  # the expected fingerprint as someone's subkey
        ([], False),
    ],
)
def test_a_key_file_with_extra_keys_is_refused(tmp_path: Path, listing, accepted) -> None:
    task = {
        "name": "apt key check",
        "ansible.builtin.include_role": {"name": "apt_sources", "tasks_from": "key_check.yml"},
        "vars": {
            "__apt_sources_key_listing": {"stdout_lines": listing},
            "__apt_sources_repo": {
                "name": "nvidia-cuda",
                "key_url": "https://example.invalid/3bf863cc.pub",
                "fingerprint": NVIDIA_KEY,
            },
        },
    }
    run = run_tasks(tmp_path, [task], {"ws": {}})
    message = run.failure_message("ws")
    if accepted:
        assert message is None, message
    else:
        assert message and f"only {NVIDIA_KEY} is trusted for nvidia-cuda" in message, message


# --- pip installs are hash-checked -------------------------------------------------------------


def _wheel(folder: Path, payload: str, name: str = "labrigprobe") -> Path:
    """A minimal wheel (one module), as pip builds and installs them."""
    import base64
    import hashlib
    import zipfile

    path = folder / f"{name}-1.0-py3-none-any.whl"
    files = {
        f"{name}.py": f"PAYLOAD = {payload!r}\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: labrig-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={digest},{len(data)}")
            wheel.writestr(member, data)
        record.append(f"{name}-1.0.dist-info/RECORD,,")
        wheel.writestr(f"{name}-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def test_every_pip_install_is_checked_against_the_lock(tmp_path: Path) -> None:
    import hashlib
    import sys

    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    wheels = [
        _wheel(wheelhouse, "the file the lock names", name)
        for name in ("labrigprobe", "labrigother")
    ]
    digests = {
        wheel.name.split("-")[0]: hashlib.sha256(wheel.read_bytes()).hexdigest() for wheel in wheels
    }
    lines = [f"{name}==1.0 --hash=sha256:{digest}" for name, digest in digests.items()]
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    lock = tmp_path / "pip-lock.yml"
    lock.write_text(yaml.safe_dump({"locks": {tag: {"probe": lines}}}))

    def install(name: str, set_name: str = "probe"):
        task = labrig(
            "pip",
            labrig_pip_set=set_name,
            labrig_pip_venv=str(tmp_path / name / "venv"),
            labrig_pip_python=sys.executable,
            labrig_pip_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)},
            __labrig_pip_dir=str(tmp_path / name / "requirements"),
        )
        return run_tasks(tmp_path / name, [task], {"ws": {"labrig_pip_lock": str(lock)}})

    good = install("good")
    assert good.failure("ws") is None, good.stdout[-3000:]
    installed = list((tmp_path / "good" / "venv" / "lib").glob("python*/site-packages/labrig*.py"))
    assert sorted(path.name for path in installed) == ["labrigother.py", "labrigprobe.py"], (
        installed
    )

    # The same name and version, other bytes: a mirror or a wheelhouse that was tampered with.
    _wheel(wheelhouse, "something else")
    tampered = install("tampered")
    message = str((tampered.failure("ws") or {}).get("msg", ""))
    assert "DO NOT MATCH THE HASHES" in message.upper(), tampered.stdout[-3000:]

    missing = install("missing", set_name="torch-cuda")
    message = missing.failure_message("ws") or ""
    assert f"pins no torch-cuda packages for {tag}" in message, message
    assert "scripts/pip_lock.py" in message, message


def test_the_shipped_lock_pins_what_the_roles_install() -> None:
    lock = yaml.safe_load((ROLES / "labrig" / "files" / "pip-lock.yml").read_text())["locks"]
    debian = lock["cp311"]
    assert set(debian) >= {"mxnet", "mxnet-cu112", "source", "torch", "verify"}
    pinned = {
        line.split("==")[0].lower(): line.split("==")[1].split()[0]
        for lines in debian.values()
        for line in lines
    }
    # In step with what the roles ask for (scripts/pip_lock.py reads the same defaults).
    mxnet = yaml.safe_load((ROLES / "mxnet" / "defaults" / "main.yml").read_text())
    verify = yaml.safe_load((ROLES / "verify" / "defaults" / "main.yml").read_text())
    assert pinned["mxnet"] == pinned["mxnet-cu112"] == mxnet["mxnet_version"]
    assert pinned["numpy"] == "1.23.5"
    for requirement in verify["verify_python_packages"]:
        name, version = requirement.split("==")
        assert pinned[name.lower()] == version, requirement
    every = [line for sets in lock.values() for lines in sets.values() for line in lines]
    for line in every:
        assert " --hash=sha256:" in line and len(line.split("sha256:")[1]) == 64, line


# --- reboots, one host at a time ------------------------------------------------------------


def test_reboots_are_throttled_one_host_at_a_time(tmp_path: Path) -> None:
    reboot = yaml.safe_load((ROLES / "labrig" / "tasks" / "reboot.yml").read_text())
    tasks = {task["name"]: task for task in reboot[0]["block"]}
    throttle = tasks["Reboot and wait for the host"]["throttle"]
    assert throttle == "{{ labrig_reboot_throttle | int }}"
    defaults = yaml.safe_load((ROLES / "labrig" / "defaults" / "main.yml").read_text())
    assert defaults["labrig_reboot_throttle"] == 1

    # Ansible honours a templated throttle: three hosts "reboot" (sleep) one after the other.
    log = tmp_path / "reboots.log"
    task = {
        "name": "Stand-in for the reboot",
        "ansible.builtin.shell": (
            f"echo start $(date +%s.%N) >> {log}; sleep 1; echo end $(date +%s.%N) >> {log}"
        ),
        "throttle": throttle,
    }
    hosts = {name: {"labrig_reboot_throttle": 1} for name in ("ws01", "ws02", "ws03")}
    run = run_tasks(tmp_path / "run", [task], hosts)
    assert all(run.failure(host) is None for host in hosts), run.stdout[-3000:]
    events = [line.split() for line in log.read_text().splitlines()]
    running = peak = 0
    for kind, _ in sorted(events, key=lambda event: float(event[1])):
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 1, events


def test_network_retries_back_off() -> None:
    failure = {"failed": True, "msg": "Could not connect to 10.203.7.1:3142", "attempts": 3}
    started = time.monotonic()
    assert _network_test()(failure, 0.05) is True
    # delay x 2^(attempt-1): the third attempt waits four times the first one's delay.
    assert 0.2 <= time.monotonic() - started < 2
    started = time.monotonic()
    assert _network_test()({"failed": True, "msg": "No package matching"}, 5) is False
    assert time.monotonic() - started < 0.5
