"""Reading the snapshot's recorded answers, shared by the checks and the reports.

Each query is stored as `{"value": ...}` or `{"error": ..., "message": ...}` (verify/snapshot.py).
"""

from __future__ import annotations

from typing import Any


def value(outcome: dict[str, Any] | None) -> Any:
    """The answer of a recorded query; None when it raised or was never asked."""
    return (outcome or {}).get("value")


def cuda_version_text(encoded: int) -> str:
    """NVML's CUDA driver API version, e.g. 12020 -> '12.2'."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"
