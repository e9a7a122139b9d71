"""The python_runtime role finds upstream's tarball and Debian's patches among the pinned source
files, as Ansible's templating reads its vars (a regex escape that plain Jinja takes is not one
there)."""

from __future__ import annotations

from pathlib import Path

import yaml
from role_support import ROLES, run_tasks


def test_upstream_tarball_and_debian_patches_are_found(tmp_path: Path) -> None:
    role_vars = yaml.safe_load((ROLES / "python_runtime" / "vars" / "main.yml").read_text())
    names = ["__python_runtime_upstream_archive", "__python_runtime_debian_archive"]
    cases = {
        "debian": [
            "python3.11_3.11.2.orig.tar.gz",
            "python3.11_3.11.2-6+deb12u8.debian.tar.xz",
        ],
        "upstream": ["Python-3.11.9.tgz"],
    }
    hosts = {
        host: {
            "labrig_python_sources": [{"name": name, "dir": "/src"} for name in files],
            **{name: role_vars[name] for name in names},
        }
        for host, files in cases.items()
    }

    run = run_tasks(tmp_path, [], hosts, report_vars=tuple(names))

    assert run.value("debian", names[0]) == "python3.11_3.11.2.orig.tar.gz"
    assert run.value("debian", names[1]) == "python3.11_3.11.2-6+deb12u8.debian.tar.xz"
    assert run.value("upstream", names[0]) == "Python-3.11.9.tgz"
    assert run.value("upstream", names[1]) == ""
