"""labrig_apt_pin_version: the version of an apt package to install and hold, from the output of
`apt-cache policy <package>`. The driver and CUDA roles both pin this way."""

from __future__ import annotations

import re


def labrig_apt_pin_version(policy: str, version: str = "", series: str = "") -> str:
    """`version` when one is given; else the installed version when it is in `series` (an upstream
    prefix such as "535" or "11.8": a re-run never upgrades silently); else the candidate.
    "(none)" when apt knows neither."""
    if version:
        return str(version)
    found = dict(re.findall(r"^\s*(Installed|Candidate): (\S+)", policy or "", re.MULTILINE))
    installed = found.get("Installed", "(none)")
    if re.match(rf"(\d+:)?{re.escape(str(series))}\.", installed):
        return installed
    return found.get("Candidate", "(none)")


class FilterModule:
    def filters(self):
        return {"labrig_apt_pin_version": labrig_apt_pin_version}
