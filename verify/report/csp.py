"""Content-Security-Policy sources for labrig's self-contained pages (fleet.html, a host's
burn-in page): their own inline script and style are allowed by hash, nothing else runs."""

from __future__ import annotations

import base64
import hashlib


def csp_hash(element_text: str) -> str:
    """The CSP source that allows one inline <script> or <style> element with exactly this text."""
    digest = hashlib.sha256(element_text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"
