"""Decisions the driver role takes from apt's package metadata, as filters:

- labrig_apt_transitional: whether `apt-cache show` records describe a transitional package (one
  that only pulls in another branch), by its metadata, never by its version string;
- labrig_ubuntu_kernel_flavour: the flavour of Ubuntu's kernel metapackage (generic,
  generic-hwe-22.04, ...), which names Canonical's signed module package for it."""

from __future__ import annotations

import re

_KERNEL_META = re.compile(r"^linux-image-(?!\d)([a-z][a-z0-9.+-]*)$")


def _stanzas(records: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", records or ""):
        fields: dict[str, str] = {}
        name = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and name:
                fields[name] += "\n" + line.strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                fields[name] = value.strip()
        if fields.get("Package"):
            stanzas.append(fields)
    return stanzas


def labrig_apt_transitional(records: str) -> str:
    """'' when no record is transitional; else what the first transitional one is, e.g.
    "nvidia-dkms-535 535.309.01-0ubuntu0.22.04.2 is a transitional package (Section
    restricted/oldlibs) for nvidia-dkms-580". Debian policy marks a transitional package by its
    section (oldlibs) and its description; both are read."""
    for record in _stanzas(records):
        section = record.get("Section", "")
        summary = record.get("Description", "").split("\n", 1)[0]
        if not (section.split("/")[-1] == "oldlibs" or "transitional" in summary.lower()):
            continue
        depends = [
            re.split(r"[\s(]", alternative.strip(), maxsplit=1)[0]
            for alternative in record.get("Depends", "").replace("\n", " ").split(",")
            if alternative.strip()
        ]
        target = f" for {', '.join(depends)}" if depends else ""
        where = f"Section {section}" if section.split("/")[-1] == "oldlibs" else f'"{summary}"'
        version = f" {record['Version']}" if record.get("Version") else ""
        return f"{record['Package']}{version} is a transitional package ({where}){target}"
    return ""


def labrig_ubuntu_kernel_flavour(installed: list[str]) -> str:
    """The flavour of the kernel metapackage installed (linux-image-generic-hwe-22.04 ->
    generic-hwe-22.04; virtual -> generic, as ubuntu-drivers maps it), an HWE one first, since
    an installed HWE metapackage is the kernel the host follows. '' when there is none."""
    flavours = sorted(
        {
            "generic" if match.group(1) == "virtual" else match.group(1)
            for name in installed
            if (match := _KERNEL_META.match(name.strip()))
            and not match.group(1).startswith(("unsigned", "extra"))
        }
    )
    if not flavours:
        return ""
    return next((flavour for flavour in flavours if "-hwe-" in flavour), flavours[0])


class FilterModule:
    def filters(self):
        return {
            "labrig_apt_transitional": labrig_apt_transitional,
            "labrig_ubuntu_kernel_flavour": labrig_ubuntu_kernel_flavour,
        }
