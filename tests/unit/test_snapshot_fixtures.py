"""The synthetic snapshot files are exactly what the generator in conftest.py builds."""

from __future__ import annotations

import json
import os

from verify import snapshot as snapshot_module

REGENERATE = os.environ.get("LABRIG_REGEN_FIXTURES") == "1"


def test_synthetic_fixtures_match_generator(synthetic_variants):
    stale = []
    for name, (build, path) in synthetic_variants.items():
        built = build()
        if REGENERATE:
            snapshot_module.save(built, path)
        if not path.exists() or json.loads(path.read_text(encoding="utf-8")) != built:
            stale.append(name)
    assert not stale, f"regenerate with LABRIG_REGEN_FIXTURES=1: {stale}"


def test_every_snapshot_fixture_loads(snapshot_dir, synthetic_variants):
    paths = sorted(snapshot_dir.glob("*.json"))
    assert len(paths) >= len(synthetic_variants)
    for path in paths:
        loaded = snapshot_module.load(path)
        assert loaded["format"] == snapshot_module.SNAPSHOT_FORMAT
        # Only recordings from real cards may drop the synthetic- prefix.
        if path.name.startswith("synthetic-"):
            assert loaded["host"].startswith("synthetic-")
