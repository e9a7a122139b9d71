"""labrig_apt_pin_version: the version of an apt package to install and hold, from the output of
`apt-cache policy <package>`. The driver and CUDA roles both pin this way."""

from __future__ import annotations

import re


def labrig_apt_pin_version(policy: str, version: str = "", series: str = "") -> str:
    """`version` when one is given; else the installed version when it is in `series` (an upstream
    prefix such as "535" or "11.8": a re-run never upgrades silently); else the candidate when it
    is in the series; else the newest version in the series that an archive offers (apt never makes
    a downgrade the candidate, so a newer version installed by hand hides it). "(none)" when apt
    knows none."""
    if version:
        return str(version)
    found = dict(re.findall(r"^\s*(Installed|Candidate): (\S+)", policy or "", re.MULTILINE))
    in_series = re.compile(rf"(\d+:)?{re.escape(str(series))}\.")
    installed = found.get("Installed", "(none)")
    candidate = found.get("Candidate", "(none)")
    if in_series.match(installed):
        return installed
    if in_series.match(candidate) or not series:
        return candidate
    for offered in _archive_versions(policy or ""):
        if in_series.match(offered):
            return offered
    return candidate


def _archive_versions(policy: str) -> list[str]:
    """The version table's versions that some source other than dpkg's status file offers,
    newest first (the order apt lists them in)."""
    versions: list[str] = []
    current = ""
    for line in policy.split("Version table:", 1)[-1].splitlines():
        # "     535.309.01-0+deb12u1 500" (a version and its priority), then its sources.
        head = re.match(r"^\s*(?:\*\*\*\s+)?(\S+) -?\d+$", line)
        if head:
            current = head.group(1)
            continue
        source = re.match(r"^\s+-?\d+ (\S+)", line)
        offered = source and source.group(1) != "/var/lib/dpkg/status"
        if offered and current and current not in versions:
            versions.append(current)
    return versions


class FilterModule:
    def filters(self):
        return {"labrig_apt_pin_version": labrig_apt_pin_version}
