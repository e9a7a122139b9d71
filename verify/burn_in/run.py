"""Orchestration: one worker process per device, all at once; NVML sampling in a thread of this
process; Ctrl-C, SIGTERM and SIGHUP (a lost SSH session) stop the load on every device and the
run still ends with what was measured.

`execute` is the run; what it returns (`Outcome`) is all the verdicts and the report need.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verify import cuda_devices
from verify.burn_in import dcgm as dcgm_module
from verify.burn_in.sampling import KernelTail, Sampler, XidWatch, card_limits, health_reader
from verify.burn_in.series import DeviceRecord
from verify.burn_in.worker import WorkerSpec
from verify.burn_in.worker import main as worker_main

# Seconds a worker gets, once told to stop, to finish its iteration and report.
STOP_GRACE_S = 30.0
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Options:
    minutes: float
    framework: str
    cpu_only: bool = False
    size: int | None = None
    check_every: int | None = None
    memory_bytes: int | None = None
    memory_share: float = 0.8
    copy_bytes: int | None = None
    dcgm_level: int = 2
    sample_interval_s: float = 1.0
    inject: dict[str, Any] = field(default_factory=dict)

    def sized(self, on_gpu: bool) -> dict[str, Any]:
        """Sizes for a device: the card's full load on a GPU, small enough to be quick on a CPU."""
        seconds = self.minutes * 60
        return {
            "size": self.size or (8192 if on_gpu else 256),
            "check_every": self.check_every or (50 if on_gpu else 5),
            "memory_bytes": self.memory_bytes or (None if on_gpu else 16 * 2**20),
            "copy_bytes": self.copy_bytes or (256 * 2**20 if on_gpu else 4 * 2**20),
            # Several memory passes in a run, never more than a minute of GEMM between them.
            "cycle_s": max(1.0, min(60.0, seconds / 3)),
        }


@dataclass
class Outcome:
    records: list[DeviceRecord]
    run: dict[str, Any]
    dcgm: dict[str, Any]


def plan(
    snapshot: dict[str, Any], options: Options, *, list_devices=None
) -> list[tuple[DeviceRecord, int | None, tuple[int, int] | None]]:
    """(record, framework device number, compute capability) of every device the run loads."""
    if options.cpu_only:
        return [(DeviceRecord(gpu=None, label="cpu"), None, None)]
    gpus = snapshot.get("nvml", {}).get("gpus") or []
    identities = [cuda_devices.nvml_identity(device) for device in gpus]
    listed = (list_devices or cuda_devices.list_cuda_devices)()
    targets = cuda_devices.map_gpus(identities, listed, cuda_devices.cuda_visible_devices())
    planned = []
    for identity in identities:
        target = targets[identity["index"]]
        record = DeviceRecord(
            gpu=identity["index"],
            label=f"gpu{identity['index']}",
            uuid=identity["uuid"],
            name=identity["name"],
            pci_bus_id=identity["pci_bus_id"],
        )
        if target.ordinal is None:
            record.gemm = {"error": f"no CUDA device: {target.why_not}"}
            record.memory = dict(record.gemm)
        capability = identity["compute_capability"]
        planned.append((record, target.ordinal, tuple(capability) if capability else None))
    return planned


class StopSignals:
    """While active, the handled signals set `stop` and remember which came first."""

    def __init__(self, stop: Any) -> None:
        self.stop = stop
        self.received: str | None = None
        self.previous: dict[int, Any] = {}

    def _handle(self, number: int, _frame: Any) -> None:
        self.received = self.received or signal.Signals(number).name
        self.stop.set()

    def __enter__(self) -> StopSignals:
        for number in HANDLED_SIGNALS:
            self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *_exc: Any) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def execute(
    snapshot: dict[str, Any],
    options: Options,
    *,
    note: Callable[[str], None] = lambda _text: None,
    read_log: Callable[[], dict[str, Any]] | None = None,
    list_devices: Callable[[], dict[str, Any]] | None = None,
    run_dcgm: Callable[[int], dict[str, Any]] = dcgm_module.run_diag,
    status_every_s: float = 30.0,
) -> Outcome:
    """The burn-in: spawn a worker per device, supervise them (samples, Xids, stop signals), then
    collect what they measured and DCGM's verdict."""
    planned = plan(snapshot, options, list_devices=list_devices)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    stop = context.Event()
    records = {record.label: record for record, _, _ in planned}
    started = time.time()
    xid = None
    if not options.cpu_only:
        from verify.snapshot import read_kernel_log

        # A given reader (a recorded log) is the log; on a host, /dev/kmsg's new lines where
        # this user may open it, else the whole log read again each poll.
        xid = XidWatch(read_log or read_kernel_log, open_tail=None if read_log else KernelTail)
        xid.start()
    readers = {}
    for record, _, _ in planned:
        if record.pci_bus_id:
            record.card = card_limits(record.pci_bus_id)
            readers[record.label] = health_reader(record.pci_bus_id)
    with StopSignals(stop) as signals:
        processes = spawn(planned, options, context, messages, stop)
        sampler = Sampler(
            readers,
            lambda key, sample: records[key].samples.append(sample),
            started=started,
            interval_s=options.sample_interval_s,
            xid=xid,
        )
        sampler.start()
        note(f"burn-in: {len(processes)} device(s) under load for {options.minutes:g} min")
        # Each worker's clock starts once its setup (import, CUDA context, reference GEMMs) is
        # done; a setup that takes longer than the grace is stopped with the rest.
        crashed = supervise(
            processes,
            records,
            messages,
            stop,
            signals,
            started=started,
            deadline=started + options.minutes * 60,
            note=note,
            status_every_s=status_every_s,
        )
        sampler.stop()
        if xid:
            xid.poll()
            xid.close()
        duration = time.time() - started
        interrupted = signals.received
    return collect(
        records,
        options,
        xid,
        crashed=crashed,
        duration_s=duration,
        interrupted=interrupted,
        run_dcgm=run_dcgm,
        note=note,
    )


def spawn(
    planned: list[tuple[DeviceRecord, int | None, tuple[int, int] | None]],
    options: Options,
    context: Any,
    messages: Any,
    stop: Any,
) -> dict[str, Any]:
    """One worker process per device that can run (a device without a CUDA target has none)."""
    processes = {}
    for record, ordinal, capability in planned:
        if record.gemm.get("error"):
            continue
        spec = WorkerSpec(
            key=record.label,
            framework=options.framework,
            gpu=record.gpu,
            ordinal=ordinal,
            compute_capability=capability,
            seconds=options.minutes * 60,
            memory_share=options.memory_share,
            inject=options.inject,
            **options.sized(record.gpu is not None),
        )
        process = context.Process(
            target=worker_main, args=(spec, messages, stop), name=f"burn-in-{record.label}"
        )
        process.start()
        processes[record.label] = process
    return processes


def supervise(
    processes: dict[str, Any],
    records: dict[str, DeviceRecord],
    messages: Any,
    stop: Any,
    signals: StopSignals,
    *,
    started: float,
    deadline: float,
    note: Callable[[str], None],
    status_every_s: float,
) -> list[str]:
    """Read the workers' reports until every one has finished, crashed, or been stopped (by a
    signal, or long past the deadline); every worker is ended on return. Returns what crashed."""
    finished: set[str] = set()
    crashed: list[str] = []
    stop_sent_at: float | None = None
    next_status = time.time() + status_every_s
    while len(finished) < len(processes):
        _drain(messages, records, finished, crashed, timeout=0.5)
        now = time.time()
        for label, process in processes.items():
            if label not in finished and not process.is_alive():
                _drain(messages, records, finished, crashed, timeout=0.5)
                if label not in finished:
                    finished.add(label)
                    crashed.append(f"{label} exited {process.exitcode} without reporting")
        if stop.is_set() and stop_sent_at is None:
            stop_sent_at = now
            note(f"burn-in: {signals.received or 'stop'}: stopping the load on every device")
        if stop_sent_at and now - stop_sent_at > STOP_GRACE_S:
            for label, process in processes.items():
                if process.is_alive():
                    process.kill()
                    crashed.append(f"{label} did not stop within {STOP_GRACE_S:.0f} s")
            break
        if now > deadline + STOP_GRACE_S * 4:
            stop.set()
        if now >= next_status:
            next_status = now + status_every_s
            note(status_line(records.values(), now - started))
    stop.set()
    for process in processes.values():
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    return crashed


def collect(
    records: dict[str, DeviceRecord],
    options: Options,
    xid: XidWatch | None,
    *,
    crashed: list[str],
    duration_s: float,
    interrupted: str | None,
    run_dcgm: Callable[[int], dict[str, Any]],
    note: Callable[[str], None],
) -> Outcome:
    """Each device's Xid lines, DCGM's diagnostics (not after a stop or on the CPU) and the run's
    summary."""
    for record in records.values():
        if xid:
            record.xid_lines = xid.lines_for(record.pci_bus_id)
    dcgm: dict[str, Any]
    if options.cpu_only:
        dcgm = {"present": False, "why": "--cpu-only: DCGM diagnostics not run"}
    elif interrupted:
        dcgm = {"present": False, "why": f"run stopped by {interrupted}: DCGM diagnostics not run"}
    else:
        note(f"burn-in: running dcgmi diag -r {options.dcgm_level} if present")
        dcgm = run_dcgm(options.dcgm_level)
    run = {
        "minutes": options.minutes,
        "duration_s": round(duration_s, 3),
        "devices": len(records),
        "interrupted": interrupted,
        "crashed": "; ".join(crashed) or None,
    }
    return Outcome(list(records.values()), run, dcgm)


def _drain(
    messages: Any,
    records: dict[str, DeviceRecord],
    finished: set[str],
    crashed: list[str],
    *,
    timeout: float,
) -> None:
    try:
        key, kind, payload = messages.get(timeout=timeout)
    except queue_module.Empty:
        return
    while True:
        record = records[key]
        if kind == "rate":
            record.gemm_series["t"].append(payload["t"])
            record.gemm_series["tflops"].append(payload["tflops"])
        elif kind in ("state", "done"):
            error = record.gemm.get("error")
            record.gemm, record.memory, record.copies = (
                payload["gemm"],
                payload["memory"],
                payload["copies"],
            )
            if error:
                record.gemm["error"] = error
            if kind == "done":
                finished.add(key)
        elif kind == "error":
            record.gemm["error"] = payload
            crashed.append(f"{key}: {payload}")
        try:
            key, kind, payload = messages.get_nowait()
        except queue_module.Empty:
            return


def status_line(records: Any, elapsed: float) -> str:
    parts = []
    for record in records:
        rate = record.gemm_series["tflops"][-1] if record.gemm_series["tflops"] else 0.0
        last = record.samples[-1] if record.samples else {}
        temp = f" {last['temperature_c']} °C" if last.get("temperature_c") is not None else ""
        parts.append(
            f"{record.label} {record.gemm.get('iterations', 0)} it {rate:.3g} TFLOPS{temp}"
        )
    return f"burn-in {elapsed / 60:.1f} min: " + "; ".join(parts)
