"""The controller's cache of shared MXNet builds, one directory per build stamp:

    <cache>/<stamp>/mxnet-1.9.1+labrig.<stamp[:12]>-py3-none-linux_x86_64.whl
    <cache>/<stamp>/mxnet-1.9.1+labrig.<stamp[:12]>-py3-none-linux_x86_64.whl.sha256

The .sha256 file (sha256sum's format) is written last, so its presence marks a whole artifact.
Runs on the controller only (no module is sent to the host).

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
_RECORD_LINE = re.compile(r"^([0-9a-f]{64}) [ *](\S+\.whl)$")


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


def inspect(folder: Path, stamp: str) -> Finding:
    """What the cache holds for `stamp` in `folder` (<cache>/<stamp>); changes nothing."""
    records = sorted(folder.glob("*.whl.sha256")) if folder.is_dir() else []
    if not records:
        return Finding("absent")
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
    return Finding("valid", str(wheel), actual)


def set_aside(folder: Path) -> Path:
    """Move a refused artifact out of the way (one kept per stamp, for a post-mortem)."""
    refused = folder.with_name(folder.name + ".refused")
    if refused.exists():
        shutil.rmtree(refused)
    folder.rename(refused)
    return refused


def publish(folder: Path, stamp: str, name: str, sha256: str) -> Finding:
    """Record the sha256 of a wheel fetched into `folder`, after checking it; raises ValueError."""
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
    handle, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
    with os.fdopen(handle, "w") as out:
        out.write(f"{sha256}  {name}\n")
    os.chmod(partial, 0o644)
    os.replace(partial, folder / f"{name}.sha256")
    return Finding("valid", str(wheel), sha256)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("cache", "stamp", "publish", "wheel"))

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
                found = publish(folder, stamp, str(args["wheel"]), str(args["publish"]))
            except (ValueError, OSError) as error:
                raise AnsibleActionFail(
                    f"mxnet: the shared build was not published: {error}"
                ) from error
            return {**result, **asdict(found), "valid": True, "changed": True}
        found = inspect(folder, stamp)
        if found.state == "refused" and not self._task.check_mode:
            aside = set_aside(folder)
            found = Finding(
                "refused", found.wheel, found.sha256, f"{found.reason}; moved to {aside}"
            )
        changed = found.state == "refused" and not self._task.check_mode
        return {**result, **asdict(found), "valid": found.valid, "changed": changed}
