"""labrig_network_failure: whether a task result failed because the network did not answer (a
mirror, proxy, index or git host), as opposed to the host or the request being wrong. Every network
step retries on it (`until: result is not labrig_network_failure`), and a host that fails on it is
reported as "mirror unreachable"."""

from __future__ import annotations

import re

NETWORK_ERROR = re.compile(
    r"could not connect|connection (?:refused|reset|timed out)|connect\(\) failed"
    r"|temporary failure resolving|could not resolve|name or service not known"
    r"|network is unreachable|no route to host|failed to fetch|unable to (?:connect|access|fetch)"
    r"|some index files failed to download|max retries exceeded|timed out|urlopen error"
    r"|\b50[234]\b|bad gateway|service unavailable|hash sum mismatch",
    re.IGNORECASE,
)


def labrig_network_failure(result) -> bool:
    if not isinstance(result, dict) or not result.get("failed"):
        return False
    keys = ("msg", "stderr", "stdout", "module_stderr")
    text = " ".join(str(result.get(key, "")) for key in keys)
    return NETWORK_ERROR.search(text) is not None


class TestModule:
    def tests(self):
        return {"labrig_network_failure": labrig_network_failure}
