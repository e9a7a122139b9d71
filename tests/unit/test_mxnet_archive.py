"""`make mxnet-archive`: only the pinned checkout with every submodule at its pinned commit becomes
an archive, and the same checkout always gives the same sha256."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import mxnet_archive

TAG = "1.9.1"
GIT = ["git", "-c", "protocol.file.allow=always", "-c", "user.name=t", "-c", "user.email=t@t"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, "-C", str(cwd), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "init")
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """A miniature recursive checkout shaped like 1.9.1: the six submodules, tagged."""
    upstream = tmp_path / "upstream"
    mxnet = repo(tmp_path / "mxnet", {"Makefile": "all:\n", "make/config.mk": "USE_CUDA = 0\n"})
    for name in mxnet_archive.REQUIRED_SUBMODULES:
        sub = repo(upstream / name, {f"{name}.mk": f"# {name}\n"})
        git(mxnet, "submodule", "add", "-q", str(sub), f"3rdparty/{name}")
    git(mxnet, "commit", "-qm", "submodules")
    git(mxnet, "tag", TAG)
    return mxnet, git(mxnet, "rev-parse", "HEAD")


def run(src: Path, commit: str, out: Path) -> int:
    return mxnet_archive.main([str(src), "--out", str(out), "--tag", TAG, "--commit", commit])


def test_the_pinned_checkout_becomes_a_reproducible_archive(checkout, tmp_path, capsys):
    src, commit = checkout

    assert run(src, commit, tmp_path / "a") == 0
    assert run(src, commit, tmp_path / "b") == 0

    first, second = (sorted((tmp_path / d).glob("*.tar.gz"))[0] for d in "ab")
    assert mxnet_archive.sha256(first) == mxnet_archive.sha256(second)
    with tarfile.open(first) as tar:
        names = tar.getnames()
    assert "mxnet-1.9.1/3rdparty/ps-lite/ps-lite.mk" in names
    assert not [name for name in names if ".git" in name.split("/")]
    out = capsys.readouterr().out
    assert f"mxnet_source_archive_sha256: {mxnet_archive.sha256(first)}" in out
    assert (first.parent / f"{first.name}.sha256").read_text().split()[0] == (
        mxnet_archive.sha256(first)
    )


def test_a_submodule_not_checked_out_is_named(checkout, tmp_path, capsys):
    src, commit = checkout
    git(src, "submodule", "deinit", "-q", "-f", "3rdparty/ps-lite")

    assert run(src, commit, tmp_path / "out") == 2
    assert capsys.readouterr().err.strip() == (
        "mxnet-archive: 3rdparty/ps-lite is not checked out: "
        "git submodule update --init --recursive"
    )
    assert not (tmp_path / "out").exists()


def test_a_submodule_at_another_commit_is_named(checkout, tmp_path, capsys):
    src, commit = checkout
    intgemm = src / "3rdparty" / "intgemm"
    (intgemm / "extra.h").write_text("// not 1.9.1's\n")
    git(intgemm, "add", "extra.h")
    git(intgemm, "commit", "-qm", "moved on")

    assert run(src, commit, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "3rdparty/intgemm is at " in error and ", but 1.9.1 pins " in error


def test_another_commit_or_a_moved_tag_is_refused(checkout, tmp_path, capsys):
    src, commit = checkout

    assert run(src, "0" * 40, tmp_path / "out") == 2
    assert f"is at {commit}, not 1.9.1" in capsys.readouterr().err

    git(src, "commit", "-q", "--allow-empty", "-m", "later")
    git(src, "tag", "-f", TAG)
    git(src, "checkout", "-q", commit)
    assert run(src, commit, tmp_path / "out") == 2
    assert "tag 1.9.1 in" in capsys.readouterr().err


def test_local_changes_are_refused(checkout, tmp_path, capsys):
    src, commit = checkout
    (src / "make" / "config.mk").write_text("USE_CUDA = 1\n")

    assert run(src, commit, tmp_path / "out") == 2
    assert "has local changes (M make/config.mk ...)" in capsys.readouterr().err
