"""The card's health during a burn-in, read once a second from NVML in a thread of the parent
(the load runs in other processes, so sampling never competes with it for the GIL), and the
kernel log's new Xid lines.

NVML is reached through `verify.load_sampler`'s one initialised session; each reading is taken
on its own, so a query the card does not support leaves its field None and not the sample.
The sampler must not slow the load it watches (benchmarks/burn_in_sampler.py measures it): the
device handle is looked up once, and new kernel log lines are read from /dev/kmsg where it can
be opened, instead of re-reading the whole boot's log (a `journalctl -k` subprocess) each poll.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from verify import load_sampler
from verify.checks.xid import normalise_bus, parse_xid_lines


def _read(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:
        return None


def health_reader(bus_id: str, pynvml: Any = None) -> Callable[[], dict[str, Any]]:
    """A reader for the GPU at `bus_id`: each call returns one sample (without its time)."""

    found: list[tuple[Any, Any, Any]] = []

    def sample() -> dict[str, Any]:
        if not found:
            nvml = load_sampler._nvml(pynvml)
            reasons_of = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            reasons_of = reasons_of or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
            found.append((nvml, nvml.nvmlDeviceGetHandleByPciBusId(bus_id), reasons_of))
        nvml, handle, reasons_of = found[0]
        remapped = _read(lambda: nvml.nvmlDeviceGetRemappedRows(handle))
        power = _read(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        util = _read(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        return {
            "temperature_c": _read(
                lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
            ),
            "power_w": round(power / 1000, 1) if power is not None else None,
            "sm_clock_mhz": _read(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            "mem_clock_mhz": _read(
                lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)
            ),
            "reasons": _read(lambda: int(reasons_of(handle))),
            "pcie_gen": _read(lambda: int(nvml.nvmlDeviceGetCurrPcieLinkGeneration(handle))),
            "pcie_width": _read(lambda: int(nvml.nvmlDeviceGetCurrPcieLinkWidth(handle))),
            "util": int(util.gpu) if util is not None else None,
            "ecc_uncorrected": _read(
                lambda: int(
                    nvml.nvmlDeviceGetTotalEccErrors(
                        handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
                    )
                )
            ),
            # (corrected rows, uncorrected rows, pending, failure)
            "remap_pending": int(remapped[2]) if remapped else None,
            "remap_failure": int(remapped[3]) if remapped else None,
        }

    return sample


def card_limits(bus_id: str, pynvml: Any = None) -> dict[str, Any]:
    """The card's own limits the verdicts compare against."""
    try:
        nvml = load_sampler._nvml(pynvml)
        handle = nvml.nvmlDeviceGetHandleByPciBusId(bus_id)
    except Exception:
        return {}
    limit = _read(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    return {
        "sm_clock_max_mhz": _read(
            lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)
        ),
        "slowdown_temp_c": _read(
            lambda: nvml.nvmlDeviceGetTemperatureThreshold(
                handle, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
            )
        ),
        "power_limit_w": round(limit / 1000, 1) if limit is not None else None,
        "pcie_gen_max": _read(lambda: int(nvml.nvmlDeviceGetMaxPcieLinkGeneration(handle))),
        "pcie_width_max": _read(lambda: int(nvml.nvmlDeviceGetMaxPcieLinkWidth(handle))),
    }


KMSG = "/dev/kmsg"


class KernelTail:
    """The kernel log lines printed since it was opened, from /dev/kmsg (one record a read:
    'prio,seq,time,flags;message', continuation lines start with a space)."""

    def __init__(self, path: str = KMSG) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def new_lines(self) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                chunk = os.read(self.fd, 8192)
            except BlockingIOError:
                return lines
            except BrokenPipeError:
                # Records were overwritten before this read; the next read goes on from the
                # oldest one the ring buffer still holds.
                continue
            except OSError:
                # Anything else (a record past the buffer): what was read so far, the rest on
                # the next poll; the sampler must not die of it.
                return lines
            if not chunk:
                return lines
            for record in chunk.decode("utf-8", "replace").split("\n"):
                if record and not record.startswith(" "):
                    lines.append(record.partition(";")[2])

    def close(self) -> None:
        os.close(self.fd)


class XidWatch:
    """New NVRM Xid lines since `start()`, per bus id. `open_tail` (a `KernelTail` factory)
    reads only what the kernel printed since; where it cannot open, `read_log`, the snapshot's
    reader of the whole log ({"value": {"lines": [...]}} or {"error": ...}), is compared with
    the log at the start."""

    def __init__(
        self,
        read_log: Callable[[], dict[str, Any]],
        open_tail: Callable[[], KernelTail] | None = None,
    ) -> None:
        self.read_log = read_log
        self.open_tail = open_tail
        self.tail: KernelTail | None = None
        self.baseline: Counter[str] | None = None
        self.new: list[str] = []
        self.readable = True

    def _lines(self) -> list[str] | None:
        log = _read(self.read_log) or {}
        value = log.get("value")
        return None if value is None else list(value.get("lines") or [])

    def start(self) -> None:
        if self.open_tail:
            try:
                self.tail = self.open_tail()
                return
            except OSError:
                self.tail = None
        lines = self._lines()
        self.readable = lines is not None
        self.baseline = Counter(lines or [])

    def poll(self) -> None:
        if self.tail:
            self.new += [line for line in self.tail.new_lines() if "NVRM: Xid" in line]
            return
        lines = self._lines()
        if lines is None or self.baseline is None:
            return
        seen = Counter(self.baseline)
        for line in self.new:
            seen[line] += 1
        for line in lines:
            if seen[line] > 0:
                seen[line] -= 1
            else:
                self.new.append(line)

    def close(self) -> None:
        if self.tail:
            self.tail.close()
            self.tail = None

    def lines_for(self, bus_id: str | None) -> list[str] | None:
        if not self.readable:
            return None
        if not bus_id:
            return []
        bus = normalise_bus(bus_id)
        return [line for line in self.new if any(e["bus"] == bus for e in parse_xid_lines([line]))]


class Sampler(threading.Thread):
    """Reads every GPU's health each `interval_s` and the kernel log each `xid_every_s`,
    appending to the records' `samples` (t = seconds since `started`)."""

    def __init__(
        self,
        readers: dict[str, Callable[[], dict[str, Any]]],
        sink: Callable[[str, dict[str, Any]], None],
        *,
        started: float,
        interval_s: float = 1.0,
        xid: XidWatch | None = None,
        xid_every_s: float = 15.0,
    ) -> None:
        super().__init__(name="burn-in-sampler", daemon=True)
        self.readers = readers
        self.sink = sink
        self.started = started
        self.interval_s = interval_s
        self.xid = xid
        self.xid_every_s = xid_every_s
        self.halt = threading.Event()

    def run(self) -> None:
        next_xid = time.time()
        while not self.halt.is_set():
            tick = time.time()
            for key, read in self.readers.items():
                sample = _read(read)
                if sample is not None:
                    sample["t"] = round(time.time() - self.started, 3)
                    self.sink(key, sample)
            if self.xid and tick >= next_xid:
                _read(self.xid.poll)
                next_xid = tick + self.xid_every_s
            self.halt.wait(max(0.0, self.interval_s - (time.time() - tick)))

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)
