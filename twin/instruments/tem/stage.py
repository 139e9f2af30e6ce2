"""The TEM stage: what it reports (the encoders) and where the specimen really is.

Each x/y move lands with a seeded random error (in proportion for short jogs), an axis that reverses
direction loses up to its backlash, and the specimen drifts slowly over instrument time.
``position()`` reports the commanded encoder values, as the instrument does; ``specimen_offset()`` is
the ground truth the images are made from. Moves take ``distance / speed`` of instrument time.
Jogging moves axes at a constant speed from a start in instrument time until stopped or an axis reaches
its limit: every reading (and so every image) sees the position at its own time.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from twin import validation
from twin.instruments.clock import Clock
from twin.instruments.tem.hardware import STAGE_AXES, TemHardware
from twin.validation import brief

_STREAM_STAGE = 0x535447  # random stream tag for stage errors
_STREAM_DRIFT = 0x445246  # random stream tag for the drift direction
_JOG = 1e-6  # m: moves shorter than this keep most of the previous landing error


class Stage:
    """A five-axis goniometer stage (x, y, z in m; a, b in rad); ``b`` is ``None`` on a single-tilt holder."""

    def __init__(self, hardware: TemHardware, clock: Clock, seed: int) -> None:
        self.hardware = hardware
        self.clock = clock
        self.seed = seed
        self._commanded: dict[str, float | None] = dict.fromkeys(STAGE_AXES, 0.0)
        if hardware.holder == "SingleTilt":
            self._commanded["b"] = None
        self._error = np.zeros(2)  # actual - commanded, x and y (m)
        self._last_direction = np.zeros(2)
        self._moves = 0
        self._moving_until = 0.0  # wall clock
        self._jog: tuple[float, dict[str, float]] | None = None  # started (instrument s), velocity per axis
        angle = np.random.default_rng([seed, _STREAM_DRIFT]).uniform(0, 2 * np.pi)
        self._drift_velocity = hardware.drift_rate * np.array([np.cos(angle), np.sin(angle)])
        self._lock = threading.Lock()

    @property
    def drift_velocity(self) -> np.ndarray:
        """The specimen's drift (m/s, x and y)."""
        return self._drift_velocity.copy()

    def position(self) -> dict[str, float | None]:
        """The encoders' reading: the commanded position (while jogging, where the jog has got to)."""
        with self._lock:
            return self._now()

    def peek(self) -> dict[str, float | None]:
        """The commanded position without taking the lock (observers that must never wait; a jog's
        progress is not included)."""
        return self._commanded.copy()

    def _now(self) -> dict[str, float | None]:
        """The commanded position now (under the lock): a jog moves it with instrument time."""
        if self._jog is None:
            return dict(self._commanded)
        started, velocity = self._jog
        elapsed = self.clock.now() - started
        position = dict(self._commanded)
        for axis, speed in velocity.items():
            lo, hi = self.limits(axis)
            position[axis] = float(np.clip(self._commanded[axis] + speed * elapsed, lo, hi))
        return position

    def start_jogging(self, velocity: Any) -> None:
        """Move the axes in ``velocity`` (a mapping: m/s for x, y, z; rad/s for a, b) continuously, from
        now until :meth:`stop_jogging` (an axis stops at its limit)."""
        if not isinstance(velocity, dict) or all(v is None for v in velocity.values()):
            raise ValueError(f"velocity = {brief(velocity)}: give a speed for at least one of "
                             f"{', '.join(self.axes)} (StageVelocity(a=0.026) turns alpha at 1.5 deg/s)")
        speeds = dict(zip(STAGE_AXES, self.hardware.stage_speeds, strict=True))
        checked = {}
        for axis, value in velocity.items():
            axis = validation.one_of("stage axis", axis, self.axes)
            if value is not None:
                unit = "rad/s" if axis in "ab" else "m/s"
                checked[axis] = validation.real(f"velocity {axis}", value, -speeds[axis], speeds[axis], unit)
        with self._lock:
            self._commanded = self._now()
            self._jog = (self.clock.now(), checked)

    def stop_jogging(self) -> None:
        """Stop a jog where it has got to (nothing happens if the stage is not jogging)."""
        with self._lock:
            self._commanded = self._now()
            self._jog = None

    def limits(self, axis: Any) -> tuple[float, float]:
        axis = validation.one_of("axis", axis, self.axes)
        return self.hardware.stage_limits[STAGE_AXES.index(axis)]

    @property
    def axes(self) -> tuple[str, ...]:
        return STAGE_AXES if self.hardware.holder == "DoubleTilt" else STAGE_AXES[:4]

    @property
    def is_moving(self) -> bool:
        """A move still under way (in wall time), or a jog whose axes have not all reached a limit."""
        with self._lock:
            if self._jog is not None:
                now, velocity = self._now(), self._jog[1]
                return any(self.limits(a)[0] < now[a] < self.limits(a)[1] for a, v in velocity.items() if v)
        return self.clock.wall() < self._moving_until

    def specimen_offset(self, errors: bool = True, drift: bool = True) -> np.ndarray:
        """The sample point on the optical axis minus the encoders' x, y (m): positioning error and
        backlash (``errors``) and the specimen's drift so far (``drift``)."""
        return self.reading(errors, drift)[1]

    def reading(self, errors: bool = True, drift: bool = True) -> tuple[dict[str, float | None], np.ndarray]:
        """The encoders' reading and the specimen offset (see :meth:`specimen_offset`) at one moment:
        an acquisition reports where it was taken from a single reading, whatever moves meanwhile."""
        with self._lock:
            position = self._now()
            offset = self._error.copy() if errors else np.zeros(2)
            if drift:
                offset -= self._drift_velocity * self.clock.now()
        return position, offset

    def move(self, target: Any, relative: bool = False, safe: bool = False) -> dict[str, float | None]:
        """Move the axes in ``target`` (a mapping; ``None`` leaves an axis). All checked, then moved.

        A safe move tilts back to zero before translating and tilts to the target afterwards, as
        the instrument's safe variants do; it takes longer, and ends in the same place.
        """
        if not isinstance(target, dict):
            raise TypeError(f"stage target must be a mapping of axes to values, got {brief(target)}")
        if all(value is None for value in target.values()):
            raise ValueError(f"stage target = {brief(target)} names no axis to move; give a value for at "
                             f"least one of {', '.join(self.axes)}")
        relative = validation.flag("relative", relative)
        with self._lock:
            if self._jog is not None:
                raise RuntimeError("the stage is jogging; stop_jogging() before a move")
            new = dict(self._commanded)
            for axis, value in target.items():
                axis = validation.one_of("stage axis", axis, self.axes)
                if value is None:
                    continue
                lo, hi = self.limits(axis)
                unit = "rad" if axis in "ab" else "m"
                if relative:
                    step = validation.real(f"stage {axis} step", value, lo - hi, hi - lo, unit)
                    destination = new[axis] + step
                    if not lo <= destination <= hi:
                        raise ValueError(
                            f"stage {axis} step = {brief(value)} would reach {destination:.6g} {unit}, "
                            f"out of range; allowed {validation.allowed_range(lo, hi, unit)}"
                        )
                    new[axis] = destination
                else:
                    new[axis] = validation.real(f"stage {axis}", value, lo, hi, unit)
            duration = self._duration(self._commanded, new, safe)
            self._land(np.array([new["x"] - self._commanded["x"], new["y"] - self._commanded["y"]]))
            self._commanded = new
            self._moving_until = self.clock.wall() + duration * self.clock.time_scale
        self.clock.advance(duration)
        return dict(new)

    def _duration(self, old: dict[str, Any], new: dict[str, Any], safe: bool) -> float:
        """Seconds the move takes: axes move together; a safe move tilts out, translates, tilts in."""
        speeds = dict(zip(STAGE_AXES, self.hardware.stage_speeds, strict=True))

        def slowest(axes: str, start: dict[str, Any], end: dict[str, Any]) -> float:
            return max((abs((end[a] or 0.0) - (start[a] or 0.0)) / speeds[a] for a in axes
                        if a in self.axes), default=0.0)

        if not safe:
            return slowest("xyzab", old, new)
        level = dict.fromkeys("ab", 0.0)
        return slowest("ab", old, level) + slowest("xyz", old, new) + slowest("ab", level, new)

    def _land(self, step: np.ndarray) -> None:
        """Update the x/y error after a move by ``step`` (m). A long move lands with a fresh random
        error; a jog shorter than ``_JOG`` adds an error in proportion to its length. An axis that
        reverses direction first takes up its backlash, so it falls short by up to that much."""
        if not step.any():
            return
        rng = np.random.default_rng([self.seed, _STREAM_STAGE, self._moves])
        self._moves += 1
        direction = np.sign(step)
        reversed_axes = (direction != 0) & (self._last_direction != 0) & (direction != self._last_direction)
        scatter = rng.normal(0.0, self.hardware.stage_error, 2) * np.minimum(1.0, np.abs(step) / _JOG)
        error = np.where(np.abs(step) >= _JOG, scatter, self._error + scatter)
        error -= reversed_axes * direction * np.minimum(self.hardware.stage_backlash, np.abs(step))
        self._error = np.where(step != 0, error, self._error)
        self._last_direction = np.where(direction != 0, direction, self._last_direction)
