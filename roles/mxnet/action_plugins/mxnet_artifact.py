"""The controller's cache of shared MXNet builds, one directory per build stamp:

    <cache>/<stamp>/mxnet-1.9.1+labrig.<stamp[:12]>-py3-none-linux_x86_64.whl
    <cache>/<stamp>/mxnet-1.9.1+labrig.<stamp[:12]>-py3-none-linux_x86_64.whl.sha256

    <cache>/<stamp>/published-by   (the inventory name of the trusted build host that published it)

The .sha256 file (sha256sum's format) is written last, so its presence marks a whole artifact.
Runs on the controller only (no module is sent to the host). Everything the build host sent is
hostile input: the file's name is the controller's (wheel_name), its contents must be the mxnet
package and its dist-info alone (no .pth, no scripts, no data: nothing that runs when another
host's Python starts), and an artifact counts only when the trusted builder named by the admin
(mxnet_build_host) published it.

- Without `publish`: inspect the artifact of `stamp`. A valid one (its sha256 is the recorded one
  and the wheel carries this stamp) is returned; a corrupt or mismatched one is refused - moved
  aside to <stamp>.refused, so the build host of this run builds it again - and never installed.
- With `publish: <sha256>`: the build host's wheel has just been fetched into <cache>/<stamp>/;
  check it is the file the host made (its sha256) and carries this stamp, then record its sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

STAMP_FILE = "labrig-build-stamp"
PUBLISHER_FILE = "published-by"
_RECORD_LINE = re.compile(r"^([0-9a-f]{64}) [ *](\S+\.whl)$")
_WHEEL_NAME = re.compile(r"^mxnet-[0-9A-Za-z.+]+-py3-none-linux_[A-Za-z0-9_]+\.whl$")
_DIST_INFO_FILES = ("METADATA", "WHEEL", "RECORD", STAMP_FILE)


def wheel_name(version: str, stamp: str, arch: str) -> str:
    """The artifact's file name, computed on the controller (library/mxnet_wheel.py names the
    host's copy the same way); never the name a build host reports."""
    name = f"mxnet-{version}+labrig.{stamp[:12]}-py3-none-linux_{arch}.whl"
    if not _WHEEL_NAME.match(name):
        raise ValueError(f"version {version!r} or architecture {arch!r} makes no wheel file name")
    return name


def contents_problem(wheel: Path) -> str:
    """'' when the wheel holds only the mxnet package and its own dist-info, else what it
    holds besides (a .pth file or console script would run as soon as another host's venv Python
    starts, as root in the roles)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        return f"not a wheel ({error})"
    dist_infos = {name.split("/", 1)[0] for name in names if ".dist-info/" in name}
    if len(dist_infos) != 1:
        return f"{len(dist_infos)} dist-info folders, one expected"
    (dist_info,) = dist_infos
    for name in names:
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or "\\" in name:
            return f"an entry outside the package: {name}"
        if name.endswith(".pth"):
            return f"a .pth file, which Python runs at start-up: {name}"
        if parts[0] == "mxnet" and len(parts) > 1 and not name.endswith("/"):
            continue
        if parts[0] == dist_info and len(parts) == 2 and parts[1] in _DIST_INFO_FILES:
            continue
        return f"an entry that is not the mxnet package or its dist-info: {name}"
    return ""


@dataclass(frozen=True)
class Finding:
    state: str  # valid | absent | refused
    wheel: str = ""
    sha256: str = ""
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stamp_in_wheel(wheel: Path) -> str:
    """The stamp a labrig wheel carries in its dist-info, or '' when it carries none."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith(f".dist-info/{STAMP_FILE}")]
            return archive.read(names[0]).decode().strip() if len(names) == 1 else ""
    except (zipfile.BadZipFile, OSError, KeyError):
        return ""


def inspect(folder: Path, stamp: str, builder: str) -> Finding:
    """What the cache holds for `stamp` in `folder` (<cache>/<stamp>), published by `builder`;
    changes nothing."""
    records = sorted(folder.glob("*.whl.sha256")) if folder.is_dir() else []
    if not records:
        return Finding("absent")
    publisher = folder / PUBLISHER_FILE
    published_by = publisher.read_text().strip() if publisher.is_file() else ""
    if published_by != builder:
        return Finding(
            "refused",
            reason=f"published by {published_by or 'an unnamed host'}, not the trusted build host "
            f"{builder or '(none named: mxnet_build_host)'}",
        )
    if len(records) > 1:
        return Finding("refused", reason=f"{len(records)} .sha256 files in {folder}, one expected")
    line = records[0].read_text().strip()
    match = _RECORD_LINE.match(line)
    if not match or f"{match[2]}.sha256" != records[0].name:
        return Finding("refused", reason=f"{records[0]} is not '<sha256>  {records[0].name[:-7]}'")
    recorded, name = match[1], match[2]
    wheel = folder / name
    if not wheel.is_file():
        return Finding("refused", reason=f"{name} is missing beside its .sha256")
    actual = sha256_of(wheel)
    if actual != recorded:
        return Finding(
            "refused",
            str(wheel),
            actual,
            f"{name} has sha256 {actual}, not the recorded {recorded}",
        )
    carried = stamp_in_wheel(wheel)
    if carried != stamp:
        return Finding(
            "refused",
            str(wheel),
            actual,
            f"{name} carries build stamp {carried or '(none)'}, not {stamp} of its directory",
        )
    problem = contents_problem(wheel)
    if problem:
        return Finding("refused", str(wheel), actual, f"{name} holds {problem}")
    return Finding("valid", str(wheel), actual)


def set_aside(folder: Path) -> Path:
    """Move a refused artifact out of the way (one kept per stamp, for a post-mortem)."""
    refused = folder.with_name(folder.name + ".refused")
    if refused.exists():
        shutil.rmtree(refused)
    folder.rename(refused)
    return refused


def publish(folder: Path, stamp: str, name: str, sha256: str, builder: str) -> Finding:
    """Record the sha256 of a wheel fetched into `folder`, after checking it; raises ValueError."""
    if not _WHEEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a wheel file name the controller gives")
    wheel = folder / name
    actual = sha256_of(wheel)
    if actual != sha256:
        wheel.unlink()
        raise ValueError(
            f"{name} reached the controller with sha256 {actual}, not its {sha256} on the host"
        )
    carried = stamp_in_wheel(wheel)
    if carried != stamp:
        raise ValueError(f"{name} carries build stamp {carried or '(none)'}, not {stamp}")
    problem = contents_problem(wheel)
    if problem:
        wheel.unlink()
        raise ValueError(f"{name} holds {problem}")
    (folder / PUBLISHER_FILE).write_text(f"{builder}\n")
    handle, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
    with os.fdopen(handle, "w") as out:
        out.write(f"{sha256}  {name}\n")
    os.chmod(partial, 0o644)
    os.replace(partial, folder / f"{name}.sha256")
    return Finding("valid", str(wheel), sha256)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("cache", "stamp", "publish", "wheel", "builder"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        stamp = str(args.get("stamp", ""))
        if not re.fullmatch(r"[0-9a-f]{64}", stamp):
            raise AnsibleActionFail(f"mxnet_artifact: stamp {stamp!r} is not 64 hex digits")
        folder = Path(str(args["cache"])).expanduser() / stamp
        if args.get("publish"):
            if self._task.check_mode:
                return {**result, "changed": False, "skipped": True}
            try:
                found = publish(
                    folder, stamp, str(args["wheel"]), str(args["publish"]), str(args["builder"])
                )
            except (ValueError, OSError) as error:
                raise AnsibleActionFail(
                    f"mxnet: the shared build was not published: {error}"
                ) from error
            return {**result, **asdict(found), "valid": True, "changed": True}
        found = inspect(folder, stamp, str(args.get("builder", "")))
        if found.state == "refused" and not self._task.check_mode:
            aside = set_aside(folder)
            found = Finding(
                "refused", found.wheel, found.sha256, f"{found.reason}; moved to {aside}"
            )
        changed = found.state == "refused" and not self._task.check_mode
        return {**result, **asdict(found), "valid": found.valid, "changed": changed}
