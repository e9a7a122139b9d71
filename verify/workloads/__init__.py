"""Workload checks defined once (data, model, thresholds) and run through a framework adapter.

`verify.workloads.runner.run_workloads` runs them (its docstring is the contract `verify.cli`
relies on). Each check is a function `WorkloadRun -> Judgement` declared with
`verify.registry.check` in smoke.py, mlp.py or perf.py; the constants they share are in spec.py.

- `workload.smoke.*`: the seed's NDArray example, its gradient, a matrix product against float64
  and a bit-exact host↔device round trip.
- `workload.mlp`: the seed's two-layer MLP trained on the device; on a GPU also compared with one
  CPU run of the same recipe.
- `workload.perf.*`: GEMM float32/float16 TFLOP/s and pinned copy GB/s, against the GPU model's
  floor in verify/data/perf_floors.yml times `perf_floor_scale` (copy floors also scaled to the
  link the card can train to in this host); without a floor (the CPU, an unknown model) the
  numbers are reported and the check is skipped. `workload.perf.pcie_link` and
  `workload.perf.throttle` judge what NVML reported while the GEMM kept the GPU busy.

Expectations read (verify/expectations.py has the defaults): `mlp_min_accuracy`, `mlp_samples`
(the seed's `sample_density`: uniform draws before the ±0.1 band is dropped; 50 → 41 points),
`perf_floor_scale`.
"""

from __future__ import annotations

from verify import registry
from verify.workloads import mlp, perf, smoke

# The run order: quick proofs that the device computes first, the long measurements last.
CHECKS = registry.collect((smoke, mlp, perf))
CHECK_IDS = tuple(spec.check_id for spec in CHECKS)
