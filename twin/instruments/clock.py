"""Instrument time: real durations scaled by ``time_scale`` (1 = as slow as the instrument, 0 = instant).

``now()`` is the instrument's own time in seconds. With ``time_scale`` 0 it is virtual: it moves
only by the durations of operations (exposures, stage moves, scans), so the same calls always see the
same times and time-dependent effects such as drift stay reproducible. With ``time_scale`` > 0 it is
wall-clock time divided by the scale, and operations really take their time.
"""

from __future__ import annotations

import math
import threading
import time

from twin import validation


class Clock:
    """Maps instrument durations (s) to wall-clock waits and keeps instrument time."""

    def __init__(self, time_scale: float = 0.0) -> None:
        self.time_scale = validation.real("time_scale", time_scale, 0.0, 100.0)
        self._started = time.monotonic()
        self._virtual = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def wall() -> float:
        """A monotonic wall-clock reading (s)."""
        return time.monotonic()

    def now(self) -> float:
        """Instrument seconds since the twin started."""
        if self.time_scale == 0.0:
            with self._lock:
                return self._virtual
        return (self.wall() - self._started) / self.time_scale

    def elapsed(self, since: float) -> float:
        """Instrument seconds since the wall-clock reading ``since`` (infinite when time is off)."""
        if self.time_scale == 0.0:
            return math.inf
        return (self.wall() - since) / self.time_scale

    def advance(self, duration: float) -> None:
        """Let ``duration`` instrument seconds pass: wait for them, or count them when time is off."""
        if duration <= 0.0:
            return
        if self.time_scale == 0.0:
            with self._lock:
                self._virtual += duration
        else:
            time.sleep(duration * self.time_scale)

    def pass_time(self, duration: float) -> None:
        """Note that an operation running in the background takes ``duration`` instrument seconds:
        counted at once when time is off, left to pass by itself when it runs."""
        if duration > 0.0 and self.time_scale == 0.0:
            with self._lock:
                self._virtual += duration
