"""`--only` / `--skip`: which check ids a list of selectors picks, for host and workload checks.

A selector is a check id, a dotted prefix of one (`gpu` selects `gpu.ecc`, `workload.smoke`
selects `workload.smoke.gradient`), or a shell pattern (`*.gemm_*`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable


def matches(check_id: str, selector: str) -> bool:
    return (
        check_id == selector
        or check_id.startswith(selector.rstrip(".") + ".")
        or fnmatch.fnmatchcase(check_id, selector)
    )


def selected(check_id: str, only: Iterable[str] | None, skip: Iterable[str] = ()) -> bool:
    """`only` None selects every id; `skip` wins over `only`."""
    if only is not None and not any(matches(check_id, selector) for selector in only):
        return False
    return not any(matches(check_id, selector) for selector in skip)


def unknown(selectors: Iterable[str], known_ids: Iterable[str]) -> list[str]:
    """The selectors that select none of `known_ids`: a typo must not silently run everything."""
    known = list(known_ids)
    return [s for s in selectors if not any(matches(check_id, s) for check_id in known)]
