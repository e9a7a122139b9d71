"""labrig_apt_sources: the entries of a host's apt sources, one-line (.list) and deb822 (.sources)
alike; labrig_apt_sources_for: those of them that point at one repository URI;
labrig_debian_sources_lacking: the archive sources that still lack components the roles need.

Input: [{'path': ..., 'content': ...}] as the role reads the files. Output entries:
{'path', 'types': ['deb', ...], 'uris': [...], 'suites': [...], 'components': [...], 'enabled',
 'signed_by': a keyring path or inline key, '' when apt's global keyrings are trusted}."""

from __future__ import annotations

import re

_ONE_LINE = re.compile(r"^\s*(deb(?:-src)?)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$")


def _deb822(path: str, content: str) -> list[dict]:
    entries = []
    for stanza in re.split(r"\n[ \t]*\n", content):
        fields: dict[str, str] = {}
        name = ""
        for line in stanza.splitlines():
            if line.lstrip().startswith("#"):
                continue
            if line[:1] in (" ", "\t") and name:
                fields[name] += "\n" + line.strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                fields[name] = value.strip()
        if not fields.get("uris"):
            continue
        entries.append(
            {
                "path": path,
                "types": fields.get("types", "").split(),
                "uris": fields["uris"].split(),
                "suites": fields.get("suites", "").split(),
                "components": fields.get("components", "").split(),
                "signed_by": fields.get("signed-by", "").split("\n", 1)[0].strip(),
                "enabled": fields.get("enabled", "yes").strip().lower() != "no",
            }
        )
    return entries


def _one_line(path: str, content: str) -> list[dict]:
    entries = []
    for line in content.splitlines():
        match = _ONE_LINE.match(line)
        if not match:
            continue
        kind, options, uri, suite, components = match.groups()
        option_pairs = dict(pair.split("=", 1) for pair in (options or "").split() if "=" in pair)
        entries.append(
            {
                "path": path,
                "types": [kind],
                "uris": [uri],
                "suites": [suite],
                "components": components.split(),
                "signed_by": option_pairs.get("signed-by", ""),
                "enabled": True,
            }
        )
    return entries


def labrig_apt_sources(files: list[dict]) -> list[dict]:
    entries: list[dict] = []
    for file in files or []:
        parse = _deb822 if str(file["path"]).endswith(".sources") else _one_line
        entries.extend(parse(str(file["path"]), str(file.get("content", ""))))
    return entries


def _same_uri(one: str, other: str) -> bool:
    return one.rstrip("/") == other.rstrip("/")


def labrig_apt_sources_for(entries: list[dict], uri: str) -> list[dict]:
    """The enabled binary-package entries that point at uri (a trailing / does not matter)."""
    return [
        entry
        for entry in entries or []
        if entry["enabled"]
        and "deb" in entry["types"]
        and any(_same_uri(candidate, uri) for candidate in entry["uris"])
    ]


def labrig_debian_sources_lacking(
    files: list[dict], components: list[str], explicit: list[dict] | None = None
) -> list[dict]:
    """[{'uris', 'suites', 'components'}]: each enabled binary archive source that carries `main`
    but not every one of `components`, with the components it lacks (URIs and suites as apt writes
    them, space-separated). cdrom: sources are left alone. With `explicit` sources (the operator's
    own list), each of them with every component instead."""
    if explicit:
        return [
            {"uris": source["uris"], "suites": source["suites"], "components": list(components)}
            for source in explicit
        ]
    lacking = []
    for entry in labrig_apt_sources(files):
        missing = [name for name in components if name not in entry["components"]]
        if (
            entry["enabled"]
            and "deb" in entry["types"]
            and entry["suites"]
            and "main" in entry["components"]
            and not any(uri.startswith("cdrom:") for uri in entry["uris"])
            and missing
        ):
            lacking.append(
                {
                    "uris": " ".join(entry["uris"]),
                    "suites": " ".join(entry["suites"]),
                    "components": missing,
                }
            )
    return lacking


class FilterModule:
    def filters(self):
        return {
            "labrig_apt_sources": labrig_apt_sources,
            "labrig_apt_sources_for": labrig_apt_sources_for,
            "labrig_debian_sources_lacking": labrig_debian_sources_lacking,
        }
