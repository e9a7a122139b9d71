"""Workload checks defined once (data, model, thresholds) and run through a framework adapter.

Contract (owned by the workloads work; `verify.cli` calls it):

    run_workloads(*, framework: str, gpu_indices: list[int], cpu_only: bool,
                  expectations: dict, only: set[str] | None, skip: set[str],
                  on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]

Each workload check runs once per GPU index (device gpu(i)), or once on the CPU when
`cpu_only` is true; results carry `gpu` and `framework` ({"name", "version", "device"}).
"""
