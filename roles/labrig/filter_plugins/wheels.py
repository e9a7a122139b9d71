"""labrig_locked_wheels: the wheel files a lock pins (`name==version --hash=sha256:...` lines, as
scripts/pip_lock.py writes them), each found in the controller's wheelhouse by its name and version.
The roles that unpack wheels instead of pip-installing them (NVIDIA's CUDA 11 runtime) copy exactly
these files and check each against its sha256 on the host."""

from __future__ import annotations

import re
from pathlib import Path

_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)\s+--hash=sha256:(?P<sha256>[0-9a-f]{64})$"
)


def _normalised(name: str) -> str:
    """A wheel file's distribution part (PEP 427): runs of -_. become one underscore."""
    return re.sub(r"[-_.]+", "_", name).lower()


def labrig_locked_wheels(lines: list[str] | None, wheelhouse: str = "") -> list[dict[str, str]]:
    """One entry per locked line: name, version, sha256, glob (the file name pattern) and file
    (its path in `wheelhouse`, or "" when the wheelhouse has none). A line that is not a locked
    pin raises: a hand-edited lock is refused whole rather than half-used."""
    entries = []
    for line in lines or []:
        found = _LINE.match(str(line).strip())
        if not found:
            raise ValueError(f"not a locked pin (name==version --hash=sha256:...): {line!r}")
        glob = f"{_normalised(found['name'])}-{found['version']}-*.whl"
        matches = sorted(Path(wheelhouse).glob(glob)) if wheelhouse else []
        # A name pattern with no match in a wheelhouse that differs only in case (pip writes
        # lower-case file names; an admin's copy may not).
        if not matches and wheelhouse and Path(wheelhouse).is_dir():
            matches = sorted(
                p
                for p in Path(wheelhouse).iterdir()
                if p.name.lower().startswith(glob[:-5].lower())
            )
        entries.append(
            {
                "name": found["name"],
                "version": found["version"],
                "sha256": found["sha256"],
                "glob": glob,
                "file": str(matches[-1]) if matches else "",
            }
        )
    return entries


class FilterModule:
    def filters(self) -> dict:
        return {"labrig_locked_wheels": labrig_locked_wheels}
