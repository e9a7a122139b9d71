"""Which hosts an operator's pattern names, asked of Ansible's own inventory API: the answer is the
one ansible-playbook's `--limit` will act on."""

from __future__ import annotations

import os
import re
from pathlib import Path

# `--limit`'s separators: a comma, or a colon that is no part of an IPv6 address or a range.
PATTERN_SEPARATOR = re.compile(r",|:(?![^\[]*\])")


class InventoryError(Exception):
    """The inventory cannot be read, or a pattern names no host; the message is the one line the
    operator sees."""


def load(path: Path):
    # Imported here: ansible-core takes a second to import, and most commands never need it.
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    return InventoryManager(loader=DataLoader(), sources=[str(path)])


def unknown_patterns(pattern: str, hosts_for) -> list[str]:
    """Each part of a `--limit` pattern that matches no host. Exclusions (`!x`) and intersections
    (`&x`) narrow the others and may rightly match nothing."""
    unknown = []
    for part in PATTERN_SEPARATOR.split(pattern):
        part = part.strip()
        if not part or part[0] in "!&":
            continue
        if not hosts_for(part):
            unknown.append(part)
    return unknown


def check_pattern(path: Path, pattern: str, shown_as: str) -> None:
    """Raise InventoryError naming the first part of `pattern` that is no host or group of the
    inventory at `path`, with the hosts it does know."""
    # Ansible's own warning for an unmatched pattern would name the host a second time.
    previous = os.environ.get("ANSIBLE_HOST_PATTERN_MISMATCH")
    os.environ["ANSIBLE_HOST_PATTERN_MISMATCH"] = "ignore"
    try:
        inventory = load(path)
        unknown = unknown_patterns(pattern, inventory.list_hosts)
        known = " ".join(host.name for host in inventory.list_hosts("all"))
    finally:
        if previous is None:
            del os.environ["ANSIBLE_HOST_PATTERN_MISMATCH"]
        else:
            os.environ["ANSIBLE_HOST_PATTERN_MISMATCH"] = previous
    if unknown:
        raise InventoryError(
            f"{shown_as}{unknown[0]} is not a host or group in {path}; known hosts: {known}"
        )
