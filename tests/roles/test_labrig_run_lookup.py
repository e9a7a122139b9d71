"""The run lock's identity of a run (roles/labrig/lookup_plugins/labrig_run.py): the controller, the
topmost ansible-playbook process and its start time, read from /proc and `ps` without a shell."""

from __future__ import annotations

import os
import subprocess
import sys

from role_support import ROLES, load_plugin


def _plugin():
    return load_plugin("labrig", "lookup_plugins", "labrig_run")


def test_a_process_is_named_by_its_start_time_and_an_exited_one_by_nothing():
    plugin = _plugin()
    shown = subprocess.run(
        ["ps", "-o", "lstart=", "-p", str(os.getpid())], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert plugin.process_started(os.getpid()) == shown
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert plugin.process_started(gone.pid) == ""
    assert plugin.process_started(0) == ""


def test_the_run_is_the_topmost_ansible_playbook_ancestor():
    plugin = _plugin()
    # A process whose parent is no ansible-playbook is its own run.
    assert plugin.run_process(os.getpid()) == os.getpid()
    # A worker whose parent's command line names ansible-playbook: the parent is the run.
    worker = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); import labrig_run;"
        " print(labrig_run.run_process(os.getpid()))"
    )
    playbook = (
        "import os, subprocess, sys; print(os.getpid(), flush=True);"
        " subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]], check=True)"
    )
    plugins = str(ROLES / "labrig" / "lookup_plugins")
    shown = subprocess.run(
        [sys.executable, "-c", playbook, worker, plugins, "ansible-playbook"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown[0] == shown[1], shown


def test_this_run_names_the_controller_user_and_host():
    run = _plugin().this_run()
    assert run["controller"].count("@") == 1 and run["pid"] == os.getpid()
    assert run["pid_started"]
