"""The AFM's coarse motion: the approach motor (approach, withdraw, retract) and the sample stage.

Both run in instrument time: a motion started now is under way until its duration has passed
(at once when time is off). The stage may only move while the tip is away from the surface.
"""

from __future__ import annotations

import threading
from typing import Any

from twin import validation
from twin.common.afm_vocabulary import ApproachStatus, StageState
from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.clock import Clock

AXES = {0: "x", 1: "y"}


class CoarseMotion:
    """The approach motor and the stage; thread-safe."""

    def __init__(self, hardware: AfmHardware, clock: Clock) -> None:
        self.hardware = hardware
        self.clock = clock
        self._lock = threading.Lock()
        self._motor: tuple[str, float, float] | None = None  # (kind, wall start, duration)
        self._stopped_status = ApproachStatus.Standby
        self._stage = {"x": 0.0, "y": 0.0}  # m, absolute (from the reference mark at the centre)
        self._stage_from = dict(self._stage)  # where the move under way started
        self._stage_move: tuple[float, float] | None = None  # (wall start, duration)
        self._transaction: list[tuple[str, float, bool]] = []
        self._zero = {"x": 0.0, "y": 0.0}  # m: the absolute position each axis reads as zero
        self._speed_percent = 100.0
        self._locked = False
        self._referenced = True  # the operator referenced the stage when the instrument was started

    # --- approach motor ------------------------------------------------------------------------
    def start_approach(self, busy: str | None = None, speed: float = 1.0) -> None:
        """Approach the surface (``busy`` names what forbids it, if anything) at ``speed`` relative to
        the nominal one."""
        with self._lock:
            if busy:
                raise RuntimeError(f"cannot approach while {busy}")
            if self._stage_moving():
                raise RuntimeError("cannot approach while the stage moves; wait for Stage.GetState to be "
                                   "Idle")
            self._motor = ("approach", self.clock.wall(), self.hardware.approach_duration / speed)

    def start_withdraw(self, steps: int, busy: str | None = None) -> None:
        """Withdraw the tip by ``steps`` motor steps."""
        with self._lock:
            if busy:
                raise RuntimeError(f"cannot withdraw while {busy}; call Scan.Stop() first")
            self._motor = ("withdraw", self.clock.wall(), steps * self.hardware.motor_step_time)

    def start_retract(self, busy: str | None = None) -> None:
        """Retract the tip until :meth:`stop`."""
        with self._lock:
            if busy:
                raise RuntimeError(f"cannot retract while {busy}; call Scan.Stop() first")
            self._motor = ("retract", self.clock.wall(), float("inf"))

    def stop(self) -> None:
        """Stop the approach motor where it is."""
        with self._lock:
            if self._motor is None:
                return
            kind, started, duration = self._motor
            if self.clock.elapsed(started) < duration:
                aborted = kind == "approach"
                self._stopped_status = ApproachStatus.UserAbort if aborted else ApproachStatus.Standby
                self._motor = None

    def status(self) -> int:
        with self._lock:
            return self._status()

    def _status(self) -> int:
        if self._motor is None:
            return self._stopped_status
        kind, started, duration = self._motor
        done = self.clock.elapsed(started) >= duration
        if kind == "approach":
            return ApproachStatus.ApproachDone if done else ApproachStatus.Approaching
        return ApproachStatus.Standby if done else ApproachStatus.MoveAway

    def is_moving(self) -> bool:
        return self.status() in (ApproachStatus.Approaching, ApproachStatus.MoveAway)

    def approached(self) -> bool:
        return self.status() == ApproachStatus.ApproachDone

    # --- stage ---------------------------------------------------------------------------------
    def clear_move_transaction(self) -> None:
        with self._lock:
            self._transaction = []

    def append_to_move_transaction(self, axis: Any, value: Any, relative: Any) -> None:
        """Add a move of ``axis`` (0 = x, 1 = y) to ``value`` (m), or by it when ``relative``."""
        axis = validation.one_of("axis", axis, tuple(AXES))
        limit = self.hardware.stage_range / 2
        relative = validation.flag("relative", relative)
        reach = 2 * limit if relative else limit
        value = validation.real("value", value, -reach, reach, "m")
        with self._lock:
            self._transaction.append((AXES[axis], value, relative))

    def commit_move_transaction(self) -> None:
        """Move every axis of the transaction at once (absolute values count from each axis's zero);
        refused while the tip is near the surface, the stage is locked or still moving."""
        with self._lock:
            if self._status() in (ApproachStatus.ApproachDone, ApproachStatus.Approaching):
                raise RuntimeError("cannot move the stage while the tip is approached; "
                                   "call Approach.StartWithdraw() or StartRetract() first")
            if self._locked:
                raise RuntimeError("the stage is locked; call Stage.Unlock() first")
            if self._stage_moving():
                raise RuntimeError("the stage is still moving; wait for Stage.GetState to be Idle")
            target = dict(self._stage)
            for axis, value, relative in self._transaction:
                target[axis] = target[axis] + value if relative else self._zero[axis] + value
            limit = self.hardware.stage_range / 2
            for axis, value in target.items():
                if not -limit <= value <= limit:
                    raise ValueError(f"the move takes stage axis {axis} to {value - self._zero[axis]:.6g} m "
                                     f"from its zero; allowed {limit - self._zero[axis]:.6g} m at most "
                                     f"either way ({validation.allowed_range(-limit, limit, 'm')} absolute)")
            self._move_to(target)
            self._transaction = []

    def _move_to(self, target: dict[str, float]) -> None:
        distance = max(abs(target[a] - self._stage[a]) for a in target)
        duration = distance / (self.hardware.stage_speed * self._speed_percent / 100)
        self._stage_from, self._stage = dict(self._stage), target
        self._stage_move = (self.clock.wall(), duration)
        self.clock.pass_time(duration)

    def stop_stage(self) -> None:
        """Stop a stage move where it has got to."""
        with self._lock:
            if not self._stage_moving():
                return
            started, duration = self._stage_move
            fraction = min(1.0, self.clock.elapsed(started) / duration)
            self._stage = {a: self._stage_from[a] + fraction * (self._stage[a] - self._stage_from[a])
                           for a in self._stage}
            self._stage_move = None

    def reference_search(self) -> None:
        """Find the reference marks: the stage travels to its centre, which becomes absolute zero."""
        with self._lock:
            if self._status() in (ApproachStatus.ApproachDone, ApproachStatus.Approaching):
                raise RuntimeError("cannot search the stage's reference while the tip is approached; "
                                   "withdraw it first")
            if self._locked:
                raise RuntimeError("the stage is locked; call Stage.Unlock() first")
            self._move_to({"x": 0.0, "y": 0.0})
            self._zero = {"x": 0.0, "y": 0.0}
            self._referenced = True

    def set_axis_zero(self, axis: Any) -> None:
        """Make the present position of ``axis`` read as zero."""
        name = AXES[validation.one_of("axis", axis, tuple(AXES))]
        with self._lock:
            self._zero[name] = self._stage[name]

    def axis_zero(self, axis: Any) -> float:
        """The absolute position (m) at which ``axis`` reads zero."""
        name = AXES[validation.one_of("axis", axis, tuple(AXES))]
        with self._lock:
            return self._zero[name]

    def set_speed_percent(self, percent: Any) -> None:
        value = validation.real("percent", percent, 0.0, 100.0, "%")
        if value == 0.0:
            raise ValueError("percent = 0 would never move the stage; allowed: more than 0 up to 100 %")
        with self._lock:
            self._speed_percent = value

    def speed_percent(self) -> float:
        with self._lock:
            return self._speed_percent

    def set_locked(self, locked: bool) -> None:
        with self._lock:
            self._locked = bool(locked)

    def is_referenced(self) -> bool:
        with self._lock:
            return self._referenced

    def stage_state(self) -> int:
        with self._lock:
            if self._stage_moving():
                return StageState.Moving
            return StageState.Idle if self._referenced else StageState.IdleUnreferenced

    def _stage_moving(self) -> bool:
        if self._stage_move is None:
            return False
        started, duration = self._stage_move
        return self.clock.elapsed(started) < duration

    def axis_position(self, axis: Any) -> float:
        """Where stage ``axis`` (0 = x, 1 = y) is (m from its zero), once any move has ended."""
        axis = validation.one_of("axis", axis, tuple(AXES))
        with self._lock:
            return self._stage[AXES[axis]] - self._zero[AXES[axis]]

    def peek_stage(self) -> dict[str, float]:
        """The stage position (m, absolute) without taking the lock (observers that must never wait; a
        move under way shows its destination)."""
        return self._stage.copy()

    def stage_position(self) -> tuple[float, float]:
        with self._lock:
            return self._stage["x"], self._stage["y"]
