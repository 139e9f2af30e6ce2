"""Instrument time: real durations scaled by ``time_scale`` (1 = as slow as the instrument, 0 = instant)."""

from __future__ import annotations

import math
import time

from twin import validation


class Clock:
    """Maps instrument durations (s) to wall-clock waits."""

    def __init__(self, time_scale: float = 0.0) -> None:
        self.time_scale = validation.real("time_scale", time_scale, 0.0, 100.0)

    @staticmethod
    def wall() -> float:
        """A monotonic wall-clock reading (s)."""
        return time.monotonic()

    def elapsed(self, since: float) -> float:
        """Instrument seconds since the wall-clock reading ``since`` (infinite when time is off)."""
        if self.time_scale == 0.0:
            return math.inf
        return (self.wall() - since) / self.time_scale

    def sleep(self, duration: float) -> None:
        """Wait for ``duration`` instrument seconds."""
        if self.time_scale > 0.0 and duration > 0.0:
            time.sleep(duration * self.time_scale)
