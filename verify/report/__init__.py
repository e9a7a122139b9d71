"""Per-host reports of one run: terminal table (live), JSON (`--json`), JUnit XML (`--junit`)."""
