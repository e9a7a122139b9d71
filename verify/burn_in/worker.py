"""The load on one device, in its own process: GEMMs compared bit for bit with the first
iteration's, memory test passes, and pinned host↔device round trips, for its seconds or until the
stop event. Everything found is streamed to the parent as it happens, so a run that is stopped
(or a worker that dies) still leaves what was measured.

Messages on the queue: (key, "rate", {t, tflops, iterations, cpu_s}) and (key, "state",
{gemm, memory, copies}) after every comparison, (key, "error", text), and (key, "done", state)
at the end.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verify.burn_in.dtypes import gemm_dtypes

PATTERNS = ("walking_ones", "address", "random")
CHUNK_BYTES = 256 * 2**20


@dataclass
class WorkerSpec:
    key: str
    framework: str
    gpu: int | None
    # The framework's device number (the CUDA ordinal the NVML GPU maps to); None on the CPU.
    ordinal: int | None
    # Seconds of load, counted once the framework is imported and the reference results are
    # made (minutes on a slow machine): a short run is not spent importing.
    seconds: float
    size: int
    check_every: int
    memory_bytes: int | None
    memory_share: float
    copy_bytes: int
    cycle_s: float
    # The card's (major, minor) from NVML: whether its tensor cores do bf16. None on the CPU.
    compute_capability: tuple[int, int] | None = None
    seed: int = 20261127
    # Fault injection for the tests: {"gemm": k} corrupts the result read at iteration k,
    # {"memory": True} flips a bit read back in the first memory pass.
    inject: dict[str, Any] = field(default_factory=dict)


def bits(array: np.ndarray) -> np.ndarray:
    """The raw bits of a result, so that -0.0 ≠ 0.0 and NaN = NaN, as silicon sees them."""
    array = np.ascontiguousarray(array)
    return array.view(f"u{array.itemsize}")


def result_bits(adapter: Any, tensor: Any, dtype: str) -> np.ndarray:
    """A GEMM result's raw bits on the host."""
    if dtype == "bfloat16":
        # numpy has no bfloat16: the same 16 bits, read as int16 on the device (only torch runs
        # bf16, see dtypes.py).
        tensor = tensor.view(adapter.module().int16)
    return bits(adapter.to_numpy(tensor))


def pattern(name: str, base_word: int, words: int, run: int, seed: int) -> np.ndarray:
    """`words` 32-bit words of a test pattern starting at word `base_word` of the region."""
    index = np.arange(base_word, base_word + words, dtype=np.uint64)
    if name == "walking_ones":
        values = np.left_shift(np.uint64(1), (index + np.uint64(run)) % np.uint64(32))
    elif name == "address":
        # Each word holds its own byte offset: a fault in the address lines lands elsewhere.
        values = (index * np.uint64(4)) & np.uint64(0xFFFFFFFF)
    else:
        rng = np.random.default_rng([seed, run, base_word])
        return rng.integers(0, 2**32, size=words, dtype=np.uint32)
    return values.astype(np.uint32)


def mismatch_ranges(got: np.ndarray, want: np.ndarray, base_byte: int) -> list[dict[str, int]]:
    wrong = np.flatnonzero(got != want)
    if wrong.size == 0:
        return []
    return [
        {
            "start": base_byte + int(wrong[0]) * 4,
            "end": base_byte + int(wrong[-1]) * 4 + 3,
            "words": int(wrong.size),
        }
    ]


class Stopped(Exception):
    pass


class Worker:
    def __init__(self, spec: WorkerSpec, queue: Any, stop: Any, adapter: Any = None) -> None:
        self.spec = spec
        self.queue = queue
        self.stop = stop
        self.parent = os.getppid()
        if adapter is None:
            from verify import frameworks

            adapter = frameworks.get_adapter(spec.framework)
        self.adapter = adapter
        self.device = adapter.device(spec.ordinal)
        self.started = time.time()
        self.deadline = self.started + spec.seconds
        self.gemm: dict[str, Any] = {"iterations": 0, "comparisons": 0, "mismatches": []}
        self.memory: dict[str, Any] = {"passes": []}
        self.copies: dict[str, Any] = {
            "rounds": 0,
            "corrupted": 0,
            "h2d_gb_per_s": [],
            "d2h_gb_per_s": [],
        }

    def send(self, kind: str, payload: Any) -> None:
        self.queue.put((self.spec.key, kind, payload))

    def state(self) -> dict[str, Any]:
        return {"gemm": self.gemm, "memory": self.memory, "copies": self.copies}

    def should_stop(self) -> bool:
        # A parent that is gone (SIGKILL, lost session) takes the load with it.
        return self.stop.is_set() or time.time() >= self.deadline or os.getppid() != self.parent

    def run(self) -> None:
        try:
            self._gemm_setup()
            self._copy_setup()
            self.deadline = time.time() + self.spec.seconds
            run = 0
            while not self.should_stop():
                gemm_until = min(self.deadline, time.time() + self.spec.cycle_s * 0.8)
                self._gemm_phase(gemm_until)
                if self.should_stop():
                    break
                self._memory_pass(PATTERNS[run % len(PATTERNS)], run)
                run += 1
        except Stopped:
            pass
        except Exception as exc:
            from verify.frameworks.base import describe_error

            self.send("error", describe_error(exc))
        self.send("done", self.state())

    # --- GEMM ------------------------------------------------------------------------------
    def _gemm_setup(self) -> None:
        self.dtypes, not_run = gemm_dtypes(
            self.spec.framework,
            self.adapter.matmul_dtypes(self.device),
            on_gpu=self.spec.gpu is not None,
            compute_capability=self.spec.compute_capability,
        )
        n = self.spec.size
        self.operands = {}
        self.reference = {}
        for number, dtype in enumerate(self.dtypes):
            a = self.adapter.random_normal((n, n), dtype, self.device, self.spec.seed + 2 * number)
            b = self.adapter.random_normal(
                (n, n), dtype, self.device, self.spec.seed + 2 * number + 1
            )
            self.operands[dtype] = (a, b)
            self.reference[dtype] = result_bits(self.adapter, self.adapter.matmul(a, b), dtype)
        self.gemm.update({"dtypes": self.dtypes, "dtypes_not_run": not_run, "size": n})
        self.gemm["iterations"] = 1
        self.results: dict[str, Any] = {}

    def _gemm_phase(self, until: float) -> None:
        n = self.spec.size
        flops = 2.0 * n**3 * len(self.dtypes)
        since, done_since = time.perf_counter(), 0
        while time.time() < until and not self.should_stop():
            for dtype, (a, b) in self.operands.items():
                self.results[dtype] = self.adapter.matmul(a, b)
            self.gemm["iterations"] += 1
            done_since += 1
            iteration = self.gemm["iterations"]
            if iteration % self.spec.check_every == 0 or iteration == self.spec.inject.get("gemm"):
                self._compare(iteration)
                elapsed = time.perf_counter() - since
                self.send(
                    "rate",
                    {
                        "t": round(time.time() - self.started, 3),
                        "tflops": round(flops * done_since / elapsed / 1e12, 6),
                        "iterations": iteration,
                        # CPU time of this process: the sampler's benchmark tells the time
                        # other jobs took from the load apart from what the load itself got.
                        "cpu_s": time.process_time(),
                    },
                )
                self._copy_round()
                self.send("state", self.state())
                since, done_since = time.perf_counter(), 0

    def _compare(self, iteration: int) -> None:
        for dtype in self.dtypes:
            got = result_bits(self.adapter, self.results[dtype], dtype)
            if iteration == self.spec.inject.get("gemm"):
                got = got.copy()
                got.flat[7] ^= 1
            wrong = int(np.count_nonzero(got != self.reference[dtype]))
            if wrong:
                self.gemm["mismatches"].append(
                    {"dtype": dtype, "iteration": iteration, "elements": wrong, "of": got.size}
                )
        self.gemm["comparisons"] += 1

    # --- host↔device copies ----------------------------------------------------------------
    def _copy_setup(self) -> None:
        elements = max(1, self.spec.copy_bytes // 4)
        self.copy_source = self.adapter.random_normal((elements,), "float32", self.device, 7)
        self.copy_expected = bits(self.adapter.to_numpy(self.copy_source))
        self.copy_host = self.adapter.pinned_host_buffer((elements,), "float32", self.device)
        self.copies["pinned"] = self.device.gpu is not None
        self.copies["bytes"] = elements * 4

    def _copy_round(self) -> None:
        adapter, device = self.adapter, self.device
        size = self.copies["bytes"]
        start = time.perf_counter()
        adapter.copy_to_host(self.copy_source, self.copy_host)
        adapter.synchronize(device)
        middle = time.perf_counter()
        back = adapter.copy_to_device(self.copy_host, device)
        adapter.synchronize(device)
        end = time.perf_counter()
        self.copies["rounds"] += 1
        if not np.array_equal(bits(adapter.to_numpy(back)), self.copy_expected):
            self.copies["corrupted"] += 1
        # Kept short: the rate is a median, not a history.
        for key, seconds in (("d2h_gb_per_s", middle - start), ("h2d_gb_per_s", end - middle)):
            rates = self.copies[key]
            rates.append(round(size / max(seconds, 1e-9) / 1e9, 3))
            del rates[:-50]

    # --- memory test -----------------------------------------------------------------------
    def _memory_budget(self) -> int:
        if self.spec.memory_bytes:
            return self.spec.memory_bytes
        info = self.adapter.memory_info(self.device)
        if not info:
            return 64 * 2**20
        free, _total = info
        return int(free * self.spec.memory_share)

    def _memory_pass(self, name: str, run: int) -> None:
        budget = self._memory_budget()
        chunk_words = max(1, min(CHUNK_BYTES, budget) // 4)
        chunks = []
        base = 0
        try:
            while base < budget // 4:
                if self.should_stop():
                    return
                words = min(chunk_words, budget // 4 - base)
                data = pattern(name, base, words, run, self.spec.seed).view(np.int32)
                chunks.append((base, words, self.adapter.to_device(data, self.device)))
                base += words
            self.adapter.synchronize(self.device)
            found = []
            for number, (start, words, tensor) in enumerate(chunks):
                if self.should_stop():
                    return
                got = self.adapter.to_numpy(tensor).view(np.uint32)
                if self.spec.inject.get("memory") and run == 0 and number == 0:
                    got = got.copy()
                    got[min(5, got.size - 1)] ^= 0x10
                found += mismatch_ranges(
                    got, pattern(name, start, words, run, self.spec.seed), start * 4
                )
        finally:
            chunks.clear()
        self.memory["passes"].append(
            {"pass": run + 1, "pattern": name, "bytes": base * 4, "mismatches": found}
        )
        self.send("state", self.state())


def main(spec: WorkerSpec, queue: Any, stop: Any) -> None:
    """Process entry: the parent alone answers Ctrl-C and a hang-up, by setting `stop`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # cuBLAS picks the same kernels for the same inputs only with a fixed workspace.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    Worker(spec, queue, stop).run()
