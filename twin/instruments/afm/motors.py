"""The AFM's coarse motion: the approach motor (approach, withdraw, retract) and the sample stage.

Both run in instrument time: a motion started now is under way until its duration has passed
(at once when time is off). The stage may only move while the tip is away from the surface.
"""

from __future__ import annotations

import threading
from typing import Any

from twin import validation
from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.afm.vocabulary import ApproachStatus, StageState
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
        self._stage = {"x": 0.0, "y": 0.0}
        self._stage_move: tuple[float, float] | None = None  # (wall start, duration)
        self._transaction: list[tuple[str, float, bool]] = []

    # --- approach motor ------------------------------------------------------------------------
    def start_approach(self, busy: str | None = None) -> None:
        """Approach the surface (``busy`` names what forbids it, if anything)."""
        with self._lock:
            if busy:
                raise RuntimeError(f"cannot approach while {busy}")
            if self._stage_moving():
                raise RuntimeError("cannot approach while the stage moves; wait for Stage.GetState to be "
                                   "Idle")
            self._motor = ("approach", self.clock.wall(), self.hardware.approach_duration)

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
        """Move every axis of the transaction at once; refused while the tip is near the surface."""
        with self._lock:
            if self._status() in (ApproachStatus.ApproachDone, ApproachStatus.Approaching):
                raise RuntimeError("cannot move the stage while the tip is approached; "
                                   "call Approach.StartWithdraw() or StartRetract() first")
            if self._stage_moving():
                raise RuntimeError("the stage is still moving; wait for Stage.GetState to be Idle")
            target = dict(self._stage)
            for axis, value, relative in self._transaction:
                target[axis] = target[axis] + value if relative else value
            limit = self.hardware.stage_range / 2
            for axis, value in target.items():
                if not -limit <= value <= limit:
                    raise ValueError(f"the move takes stage axis {axis} to {value:.6g} m; allowed "
                                     f"{validation.allowed_range(-limit, limit, 'm')}")
            distance = max(abs(target[a] - self._stage[a]) for a in target)
            self._stage = target
            self._stage_move = (self.clock.wall(), distance / self.hardware.stage_speed)
            self._transaction = []
            self.clock.pass_time(distance / self.hardware.stage_speed)

    def stage_state(self) -> int:
        with self._lock:
            return StageState.Moving if self._stage_moving() else StageState.Idle

    def _stage_moving(self) -> bool:
        if self._stage_move is None:
            return False
        started, duration = self._stage_move
        return self.clock.elapsed(started) < duration

    def axis_position(self, axis: Any) -> float:
        """Where stage ``axis`` (0 = x, 1 = y) is (m), once any move has ended."""
        axis = validation.one_of("axis", axis, tuple(AXES))
        with self._lock:
            return self._stage[AXES[axis]]

    def stage_position(self) -> tuple[float, float]:
        with self._lock:
            return self._stage["x"], self._stage["y"]
