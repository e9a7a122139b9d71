"""The tunables: one set of defaults and one validation, for the loader and the checks alike."""

from __future__ import annotations

import pytest

from verify import expectations
from verify.expectations import ExpectationsError


@pytest.mark.parametrize(
    ("key", "bad"),
    [("perf_floor_scale", 0), ("mlp_min_accuracy", 0), ("mlp_min_accuracy", 1.01)],
)
def test_a_tunable_cannot_switch_its_check_off(key, bad):
    """0 would pass any rate or any accuracy: refused when the files are loaded (exit 2) and by
    the check that reads it from expectations handed over directly (that check errors)."""
    with pytest.raises(ExpectationsError, match=f"{key} must be"):
        expectations.validate({key: bad}, "test")
    with pytest.raises(ValueError, match=f"^expectation {key} must be"):
        expectations.setting({key: bad}, key)


def test_absent_tunables_take_the_documented_defaults():
    assert {key: expectations.setting({}, key) for key in expectations.DEFAULTS} == {
        "temperature_margin_c": 5,
        "mlp_min_accuracy": 0.97,
        "mlp_samples": 50,
        "perf_floor_scale": 1.0,
    }
    assert expectations.setting({"perf_floor_scale": 0.5}, "perf_floor_scale") == 0.5
