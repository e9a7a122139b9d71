"""Each GPU against its model's median: the cheap catch for a degraded link or throttling."""

from __future__ import annotations

import pytest
from test_fleet_fixtures import gpu_host_report

from verify.fleet.compare import compare_fleet
from verify.fleet.merge import HOST_OK


def as_hosts(*reports: dict) -> list[dict]:
    return [dict(r, state=HOST_OK) for r in reports]


def test_gpu_at_half_speed_is_flagged_against_its_model_median() -> None:
    hosts = as_hosts(
        gpu_host_report("ws01", 2),
        gpu_host_report("ws02", 2, scale={1: 0.5}),
        gpu_host_report("ws03", 2),
    )
    result = compare_fleet(hosts, flag_below=0.8)
    (model,) = result["models"]
    assert model["model"] == "NVIDIA GeForce RTX 3090" and model["gpus"] == 6
    slow = next(g for g in result["gpus"] if (g["host"], g["gpu"]) == ("ws02", 1))
    assert slow["ratios"]["gemm_fp32"] == pytest.approx(0.5, abs=0.02)
    assert slow["ratios"]["h2d"] == pytest.approx(0.5, abs=0.01)
    assert set(slow["flagged"]) == {"gemm_fp32", "gemm_fp16", "h2d", "d2h"}
    assert [(f["host"], f["gpu"]) for f in result["flagged"]] == [("ws02", 1)]
    healthy = [g for g in result["gpus"] if (g["host"], g["gpu"]) != ("ws02", 1)]
    assert all(not g["flagged"] for g in healthy)


def test_time_metric_ratio_is_median_over_time() -> None:
    hosts = as_hosts(*(gpu_host_report(f"ws0{i}", 1) for i in range(1, 4)))
    for check in hosts[2]["checks"]:
        if check["check_id"] == "workload.mlp":
            check["measurements"]["train_time_s"] *= 2
    result = compare_fleet(hosts)
    slow = next(g for g in result["gpus"] if g["host"] == "ws03")
    assert slow["ratios"]["mlp_time"] == pytest.approx(0.5)
    assert slow["flagged"] == ["mlp_time"]


def test_models_are_compared_only_with_themselves() -> None:
    fast = gpu_host_report("a100host", 1, scale={0: 4.0})
    for gpu in fast["gpus"]:
        gpu["name"] = "NVIDIA A100-SXM4-80GB"
    result = compare_fleet(as_hosts(fast, gpu_host_report("ws01", 1), gpu_host_report("ws02", 1)))
    assert [m["model"] for m in result["models"]] == [
        "NVIDIA A100-SXM4-80GB",
        "NVIDIA GeForce RTX 3090",
    ]
    assert result["flagged"] == []


def test_cpu_only_and_unmeasured_hosts_add_nothing() -> None:
    cpu = {"host": "ws03", "gpus": [], "checks": [], "state": HOST_OK}
    result = compare_fleet([cpu])
    assert result["models"] == [] and result["gpus"] == [] and result["flagged"] == []


def test_one_host_claiming_impossibly_fast_cards_cannot_make_the_honest_ones_slow() -> None:
    # A rooted host reports eight RTX 3090s at 14x a real one; three honest hosts have one each.
    liar = gpu_host_report("ws99", 8, scale=dict.fromkeys(range(8), 14.0))
    hosts = as_hosts(*(gpu_host_report(f"ws0{i}", 1) for i in range(1, 4)), liar)

    result = compare_fleet(hosts, flag_below=0.8)

    honest = [g for g in result["gpus"] if g["host"] != "ws99"]
    assert all(not g["flagged"] for g in honest), honest
    assert all(g["ratios"]["gemm_fp32"] == pytest.approx(1.0) for g in honest)
    assert result["suspects"] == ["ws99"]
