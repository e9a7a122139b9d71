"""Write roles/labrig/files/pip-lock.yml: every Python package the roles install on a host, pinned,
with the sha256 of the file pip may install it from, per set and per Python of the supported
platforms. The roles install a set with `pip --require-hashes` (roles/labrig/tasks/pip.yml) and
tests/fleet/prefetch-wheels.sh fills the fleet's wheelhouse from the same lock.

pip itself resolves each set (`pip install --dry-run --report`: package metadata only, nothing is
downloaded whole or installed) for manylinux x86_64 and that Python, from the index this
controller's pip is configured for; a set a Python cannot have (PyTorch 2.13 on 3.8) is left out,
and a host that needs it stops naming this script.

    python scripts/pip_lock.py [--python 3.11 ...] [--check]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "roles" / "labrig" / "files" / "pip-lock.yml"

# The Pythons the framework's venv runs on: Ubuntu 20.04's and 22.04's own, and 3.11 (Debian
# 12's own, and the python_runtime role's pinned CPython where the release's is newer than MXNet
# 1.9.1 runs on).
PYTHONS = ("3.8", "3.10", "3.11")
# NVIDIA's CUDA 11 runtime for mxnet-cu112 where the release has no CUDA 11 packages (the cuda
# role's wheel method unpacks them; no pip install): the sonames libmxnet.so links, file by file.
CUDA11_RUNTIME = (
    "nvidia-cuda-runtime-cu11==11.8.89",
    "nvidia-cublas-cu11==11.11.3.6",
    "nvidia-cufft-cu11==10.9.0.58",
    "nvidia-curand-cu11==10.3.0.86",
    "nvidia-cusolver-cu11==11.4.1.48",
    "nvidia-cuda-nvrtc-cu11==11.8.89",
    "nvidia-nvtx-cu11==11.8.86",
)
# Every set, as sets share one virtualenv and must agree. setuptools 80 turned `setup.py develop`
# (1.9.1's editable binding, installed offline with --no-build-isolation) into a pip run that
# fetches its own build dependencies.
CONSTRAINTS = ("setuptools<80",)


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


def sets(python: str) -> dict[str, list[str]]:
    """What each role installs, from the roles' own defaults (the lock pins within them)."""
    mxnet = _defaults("mxnet")
    verify = _defaults("verify")
    numpy = mxnet["mxnet_pip_numpy"]
    version = mxnet["mxnet_version"]
    found = {
        "mxnet": [f"mxnet=={version}", numpy],
        "mxnet-cu112": [f"mxnet-cu112=={version}", numpy],
        "source": [numpy, "setuptools", "wheel", *mxnet["mxnet_python_requirements"]],
        # The CPU build the fleet's hosts install (mxnet_torch_pip_spec without CUDA).
        "torch": ["torch==2.13.0"],
        "verify": list(verify["verify_python_packages"]),
    }
    return found


def resolve(python: str, specs: list[str]) -> list[str] | None:
    """`name==version --hash=sha256:...` for every package pip would install, or None."""
    tag = python.replace(".", "")
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        constraints = Path(work) / "constraints.txt"
        constraints.write_text("\n".join(CONSTRAINTS) + "\n")
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
            "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
            "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
            "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux1_x86_64",
            "--platform", "any", "--target", str(Path(work) / "target"),
            "--report", str(report), "--constraint", str(constraints), *specs,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"pip_lock: Python {python}: {' '.join(specs)}: not resolvable "
                  f"({done.stderr.strip().splitlines()[-1:]})", file=sys.stderr)  # fmt: skip
            return None
        installs = json.loads(report.read_text())["install"]
    lines = []
    for item in sorted(installs, key=lambda item: item["metadata"]["name"].lower()):
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        if not digest:
            sys.exit(f"pip_lock: the index gave no sha256 for {item['download_info']['url']}")
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    return lines


def loosened(specs: list[str]) -> list[str]:
    """The same set with exact pins relaxed to their major version, for a Python the exact
    release has no wheel for (PyYAML 6.0.4 on 3.8): the lock then pins what that Python can have."""
    return [
        f"{spec.split('==')[0]}>={spec.split('==')[1].split('.')[0]}" if "==" in spec else spec
        for spec in specs
    ]


def build(pythons: tuple[str, ...]) -> dict:
    locks: dict[str, dict[str, list[str]]] = {}
    for python in pythons:
        tag = "cp" + python.replace(".", "")
        for name, specs in sets(python).items():
            lines = resolve(python, specs)
            if not lines and name == "verify":
                lines = resolve(python, loosened(specs))
            if lines:
                locks.setdefault(tag, {})[name] = lines
    # Files, not a venv's packages: any Python resolves them alike.
    return {"locks": locks, "files": {"cuda11": resolve("3.11", list(CUDA11_RUNTIME)) or []}}


class _Indented(yaml.SafeDumper):
    """Lists indented under their key, as yamllint wants them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help="only these Pythons (default: all)")
    parser.add_argument("--check", action="store_true", help="only report a stale lock")
    options = parser.parse_args()
    pythons = tuple(options.python or PYTHONS)
    current = yaml.safe_load(LOCK.read_text()) if LOCK.exists() else {"locks": {}}
    fresh = build(pythons)
    known = {"cp" + python.replace(".", "") for python in PYTHONS}
    locks = {
        tag: sets
        for tag, sets in {**current.get("locks", {}), **fresh["locks"]}.items()
        if tag in known
    }
    if options.check:
        stale = [tag for tag in fresh["locks"] if current.get("locks", {}).get(tag) != locks[tag]]
        if current.get("files") != fresh["files"]:
            stale.append("files")
        print(f"pip_lock: {LOCK} is {'stale for ' + ', '.join(stale) if stale else 'current'}")
        return 1 if stale else 0
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "---\n# Written by scripts/pip_lock.py: every Python package the roles install, pinned,\n"
        "# with the sha256 of its file. Installed with pip --require-hashes\n"
        "# (roles/labrig/tasks/pip.yml).\n"
    )
    LOCK.write_text(
        header
        + yaml.dump(
            {"locks": dict(sorted(locks.items())), "files": fresh["files"]},
            Dumper=_Indented,
            width=200,
        )
    )
    print(
        f"pip_lock: wrote {LOCK}: "
        + ", ".join(f"{tag} {sorted(sets)}" for tag, sets in locks.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
