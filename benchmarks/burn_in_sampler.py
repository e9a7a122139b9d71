"""The burn-in sampler's cost to the load: GEMM throughput of one burn-in worker process with
the sampler thread running in the parent (1 s interval, Xid poll every 15 s) and without it,
measured in one run. On a machine without NVML the sampler reads /proc and the kernel log in its
place, so the figure printed here is CPU-measured; on a GPU host it samples NVML for real.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verify.burn_in.sampling import Sampler, XidWatch
from verify.burn_in.worker import WorkerSpec
from verify.burn_in.worker import main as worker_main
from verify.snapshot import read_kernel_log

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))


def proc_reader() -> dict:
    load = Path("/proc/loadavg").read_text().split()
    return {"util": float(load[0]), "temperature_c": None}


def one(sampling: bool) -> float:
    context = multiprocessing.get_context("spawn")
    messages, stop = context.Queue(), context.Event()
    spec = WorkerSpec(
        key="cpu", framework="torch", gpu=None, ordinal=None,
        deadline=time.time() + SECONDS + 120, size=256, check_every=20,
        memory_bytes=1 << 20, memory_share=0.8, copy_bytes=1 << 16,
        # All GEMM: no memory pass inside the measured window.
        cycle_s=10 * SECONDS,
    )  # fmt: skip
    process = context.Process(target=worker_main, args=(spec, messages, stop))
    process.start()
    sampler = None
    if sampling:
        xid = XidWatch(read_kernel_log)
        xid.start()
        sampler = Sampler({"cpu": proc_reader}, lambda *_: None, started=time.time(), xid=xid)
        sampler.start()
    rates = []
    # Timed from the first rate, not the start: the worker first imports its framework.
    messages.get(timeout=120)
    warm_until = time.time() + 5
    while time.time() < warm_until + SECONDS:
        _key, kind, payload = messages.get()
        if kind == "rate" and time.time() > warm_until:
            rates.append(payload["tflops"])
    stop.set()
    if sampler:
        sampler.stop()
    process.join(30)
    rates.sort()
    return rates[len(rates) // 2]


def main() -> int:
    without = one(sampling=False)
    with_sampler = one(sampling=True)
    overhead = 1 - with_sampler / without
    print(f"GEMM rate without sampler: {without * 1000:.2f} GFLOPS (median, CPU)")
    print(f"GEMM rate with sampler:    {with_sampler * 1000:.2f} GFLOPS (median, CPU)")
    print(f"sampler overhead: {overhead:+.2%} (CPU-measured, one run of {SECONDS:g} s each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
