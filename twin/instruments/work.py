"""Long work on the server: estimated before it starts, watched while it runs, stopped when asked.

An acquisition first states its :class:`Cost` (seconds and bytes, from the size of the simulation
grids it will use and this machine's measured FFT speed). :class:`Limits` refuses a call whose
estimate passes the per-call limits, and reserves its bytes from the server's memory budget, shared
by every instance, for as long as it runs. While it runs, its :class:`Job` tells anyone who asks how
far it is; the physics calls :meth:`Job.step` between batches, which raises :class:`Cancelled` once
the job has been cancelled (its client disconnected, or pressed Ctrl-C).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

MAX_CALL_SECONDS = 600.0  # what one call may compute, by its estimate
BUSY_WAIT_SECONDS = 10.0  # how long a call waits for memory or the instrument before it is refused


def physical_memory() -> int:
    """Bytes of RAM on this machine (8 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


@dataclass(frozen=True)
class Cost:
    """What a piece of work is expected to take: compute time (s) and peak memory (bytes)."""

    seconds: float
    bytes: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.seconds + other.seconds, max(self.bytes, other.bytes))

    def described(self) -> str:
        return f"about {duration(self.seconds)} and {self.bytes / 2**30:.2g} GiB"


def duration(seconds: float) -> str:
    """``seconds`` in words a person reads at a glance (``"40 s"``, ``"12 min"``, ``"3.5 h"``)."""
    if seconds < 90:
        return f"{seconds:.2g} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@cache
def fft_seconds_per_unit() -> float:
    """This machine's time (s) for one unit of FFT work, ``N log2 N`` for an ``N``-point complex
    transform, measured once on 512² single-precision transforms (the work of a multislice step)."""
    import scipy.fft  # here: the command line reads this module's limits without the simulation stack

    wave = np.ones((512, 512), dtype=np.complex64)
    scipy.fft.fft2(wave, workers=-1)  # plans and threads
    started = time.perf_counter()
    for _ in range(8):
        scipy.fft.ifft2(scipy.fft.fft2(wave, workers=-1), workers=-1)
    return (time.perf_counter() - started) / (16 * fft_units(512 * 512))


def fft_units(points: int) -> float:
    """The work of one ``points``-point transform, in units of ``N log2 N``."""
    return points * math.log2(max(points, 2))


class Cancelled(RuntimeError):
    """The work was stopped before it finished (its client went away or asked)."""


_caller = threading.local()


@contextlib.contextmanager
def cancelled_with(event: threading.Event) -> Iterator[None]:
    """Jobs started on this thread within the block also stop once ``event`` is set (the server sets
    it when the client whose call this is disconnects)."""
    previous = getattr(_caller, "event", None)
    _caller.event = event
    try:
        yield
    finally:
        _caller.event = previous


@dataclass
class Job:
    """One piece of running work: what it is, its estimate, how far it has come."""

    task: str
    estimate: Cost
    started: float = field(default_factory=time.monotonic)
    fraction: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    caller_gone: threading.Event | None = field(default_factory=lambda: getattr(_caller, "event", None))

    def step(self, fraction: float) -> None:
        """Note progress (0..1); raises :class:`Cancelled` if the job has been cancelled."""
        self.fraction = min(max(float(fraction), self.fraction), 1.0)
        if self.caller_gone is not None and self.caller_gone.is_set():
            self.cancel("the client that asked for it disconnected")
        if self.cancelled.is_set():
            raise Cancelled(f"{self.task} stopped at {100 * self.fraction:.0f} %: {self.reason}")

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self.cancelled.set()

    def report(self) -> dict[str, Any]:
        """What a client sees: task, fraction done, seconds so far and left (by the estimate)."""
        elapsed = time.monotonic() - self.started
        if self.fraction > 0.05:
            left = elapsed * (1 - self.fraction) / self.fraction
        else:
            left = max(self.estimate.seconds - elapsed, 0.0)
        return {"task": self.task, "fraction": self.fraction, "elapsed": elapsed, "seconds_left": left,
                "estimated_seconds": self.estimate.seconds, "estimated_bytes": self.estimate.bytes}


class Limits:
    """Per-call limits and the server's shared memory budget (one object for every instance)."""

    def __init__(self, max_call_seconds: float = MAX_CALL_SECONDS, memory_bytes: int | None = None,
                 wait_seconds: float = BUSY_WAIT_SECONDS) -> None:
        """``memory_bytes``: what running work may hold at once (default: half the machine's RAM); one
        call may take half of it."""
        self.max_call_seconds = max_call_seconds
        self.memory_bytes = memory_bytes if memory_bytes is not None else physical_memory() // 2
        self.wait_seconds = wait_seconds
        self._held = 0
        self._changed = threading.Condition()

    @property
    def call_bytes(self) -> int:
        return self.memory_bytes // 2

    def check(self, task: str, cost: Cost, advice: str) -> None:
        """Refuse (ValueError) a ``task`` whose ``cost`` passes a per-call limit, with ``advice``."""
        if cost.seconds > self.max_call_seconds or cost.bytes > self.call_bytes:
            raise ValueError(
                f"{task} would take {cost.described()}; one call may take {duration(self.max_call_seconds)} "
                f"and {self.call_bytes / 2**30:.2g} GiB on this server (twin serve --max-call-seconds, "
                f"--memory-limit); {advice}")

    @contextlib.contextmanager
    def held(self, cost: Cost) -> Iterator[None]:
        """Hold ``cost.bytes`` of the shared budget while the block runs; waits up to
        ``wait_seconds`` for others to give some back, then refuses (RuntimeError)."""
        deadline = time.monotonic() + self.wait_seconds
        with self._changed:
            while self._held + cost.bytes > self.memory_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(
                        f"server busy: work in progress holds {self._held / 2**30:.2g} GiB of the "
                        f"{self.memory_bytes / 2**30:.2g} GiB this server allows at once, and this call "
                        f"needs {cost.bytes / 2**30:.2g} GiB; try again shortly")
                self._changed.wait(left)
            self._held += cost.bytes
        try:
            yield
        finally:
            with self._changed:
                self._held -= cost.bytes
                self._changed.notify_all()

    @property
    def held_bytes(self) -> int:
        with self._changed:
            return self._held

