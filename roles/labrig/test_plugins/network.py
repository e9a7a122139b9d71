"""labrig_network_failure: whether a task result failed because the network did not answer (a
mirror, proxy, index or git host), as opposed to the host or the request being wrong. A host that
fails on it is reported as "mirror unreachable".

Every network step retries on it with a growing wait: `until: result is not
labrig_network_failure(labrig_network_delay)` with `delay: 1`. Ansible waits the same `delay`
between attempts; the test itself waits delay x 2^(attempt-1) seconds (at most two minutes) before
it answers "a network failure, try again", so the attempts back off: 10, 20, 40, 80 s."""

from __future__ import annotations

import re
import time

NETWORK_ERROR = re.compile(
    r"could not connect|connection (?:refused|reset|timed out)|connect\(\) failed"
    r"|temporary failure resolving|could not resolve|name or service not known"
    r"|network is unreachable|no route to host|failed to fetch|unable to (?:connect|access|fetch)"
    r"|some index files failed to download|max retries exceeded|timed out|urlopen error"
    r"|\b50[234]\b|bad gateway|service unavailable|hash sum mismatch"
    # The apt module's own words when python-apt could not fetch the lists (it gives no reason).
    r"|failed to update apt cache"
    # A download that overran its time: the lists, killed by apt_sources' files/apt_update.py; a
    # step under `async`, killed by the host's async_wrapper or given up on by the controller.
    r"|timeout exceeded|async task did not complete within the requested time",
    re.IGNORECASE,
)


MAX_WAIT_S = 120


def labrig_network_failure(result, backoff_s: float = 0) -> bool:
    if not isinstance(result, dict) or not result.get("failed"):
        return False
    keys = ("msg", "stderr", "stdout", "module_stderr")
    text = " ".join(str(result.get(key, "")) for key in keys)
    failed = NETWORK_ERROR.search(text) is not None
    if failed and backoff_s:
        attempt = int(result.get("attempts", 1) or 1)
        time.sleep(min(float(backoff_s) * 2 ** (attempt - 1), MAX_WAIT_S))
    return failed


class TestModule:
    def tests(self):
        return {"labrig_network_failure": labrig_network_failure}
