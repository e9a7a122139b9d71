"""`make mxnet-archive SRC=<checkout>`: the source archive `mxnet_source_archive` takes, for labs
whose workstations cannot clone from the internet.

The checkout must be exactly what the mxnet role pins: HEAD at `mxnet_git_commit`, the tag
`mxnet_git_tag` naming that commit, no local changes, and every submodule the Makefile build needs
checked out at the commit the superproject itself records for it. Anything else is refused with
one line naming what is wrong. The archive is reproducible (sorted members, fixed owner and times),
so the same checkout always gives the same sha256.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ROLE_DEFAULTS = REPO / "roles" / "mxnet" / "defaults" / "main.yml"
# What 1.9.1's Makefile build reads (shared/notes: ps-lite's .mk is included unconditionally,
# intgemm is cloned mid-build without it, nnvm lives in tvm).
REQUIRED_SUBMODULES = ("dmlc-core", "dlpack", "tvm", "mkldnn", "ps-lite", "intgemm")


class ArchiveError(Exception):
    """The checkout is not the pinned source; the message says what to fix."""


def git(src: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(src), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ArchiveError(f"git {' '.join(args)} in {src}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def pinned() -> tuple[str, str]:
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    return str(defaults["mxnet_git_tag"]), str(defaults["mxnet_git_commit"])


def check_checkout(src: Path, tag: str, commit: str) -> None:
    if not (src / ".git").exists():
        raise ArchiveError(f"{src} is not a git checkout (clone with --recursive, keep .git)")
    head = git(src, "rev-parse", "HEAD")
    if head != commit:
        raise ArchiveError(f"{src} is at {head}, not {tag} ({commit}): git checkout {tag}")
    try:
        tagged = git(src, "rev-parse", f"refs/tags/{tag}^{{commit}}")
    except ArchiveError as missing:
        raise ArchiveError(f"{src} has no tag {tag}: fetch the tags of the clone") from missing
    if tagged != commit:
        raise ArchiveError(f"tag {tag} in {src} names {tagged}, not the pinned {commit}")
    for name in REQUIRED_SUBMODULES:
        check_submodule(src, f"3rdparty/{name}")
    changed = git(src, "status", "--porcelain", "--untracked-files=no")
    if changed:
        first = changed.splitlines()[0].strip()
        raise ArchiveError(f"{src} has local changes ({first} ...): archive a clean checkout")


def check_submodule(src: Path, path: str) -> None:
    entry = git(src, "ls-tree", "HEAD", path).split()
    if len(entry) < 3 or entry[1] != "commit":
        raise ArchiveError(f"{path} is not a submodule of this commit")
    wanted = entry[2]
    if not (src / path / ".git").exists():
        raise ArchiveError(f"{path} is not checked out: git submodule update --init --recursive")
    actual = git(src / path, "rev-parse", "HEAD")
    if actual != wanted:
        raise ArchiveError(f"{path} is at {actual}, but {commit_label(src)} pins {wanted}")


def commit_label(src: Path) -> str:
    return git(src, "describe", "--tags", "--always", "HEAD")


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if ".git" in Path(info.name).parts:
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def tree(src: Path) -> list[Path]:
    """Every file, link and folder below src but git's own, in a stable order, links unfollowed."""
    found = []
    for folder, folders, files in os.walk(src):
        folders[:] = sorted(name for name in folders if name != ".git")
        base = Path(folder)
        found += [base / name for name in folders]
        found += [base / name for name in sorted(files) if name != ".git"]
    return sorted(found)


def write_archive(src: Path, out_dir: Path, tag: str, commit: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"mxnet-{tag}-{commit[:12]}.tar.gz"
    top = f"mxnet-{tag}"
    partial = archive.with_suffix(".partial")
    with (
        open(partial, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in tree(src):
            tar.add(
                path,
                arcname=f"{top}/{path.relative_to(src)}",
                recursive=False,
                filter=_reproducible,
            )
    partial.replace(archive)
    return archive


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mxnet-archive", description=__doc__)
    parser.add_argument("src", type=Path, help="a recursive git checkout of MXNet")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts", help="where to write it")
    default_tag, default_commit = pinned()
    parser.add_argument("--tag", default=default_tag, help=f"default {default_tag} (the role's)")
    parser.add_argument("--commit", default=default_commit, help="default: the role's pin")
    args = parser.parse_args(argv)

    src = args.src.resolve()
    try:
        check_checkout(src, args.tag, args.commit)
    except ArchiveError as error:
        print(f"mxnet-archive: {error}", file=sys.stderr)
        return 2
    archive = write_archive(src, args.out, args.tag, args.commit)
    digest = sha256(archive)
    Path(f"{archive}.sha256").write_text(f"{digest}  {archive.name}\n")
    print(f"mxnet-archive: {archive} ({archive.stat().st_size >> 20} MiB)")
    print(f"mxnet_source_archive: {archive}")
    print(f"mxnet_source_archive_sha256: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
