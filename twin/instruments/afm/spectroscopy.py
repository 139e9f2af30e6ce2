"""AFM spectroscopy: force-distance curves over the shared sample, set up as the vendor's ``Spec`` object.

At each position the cantilever's base moves ``ModulationRange`` towards the surface (forward) and
back (backward) in ``ModulationTime`` each, offset by ``StartOffset`` away from it; the deflection follows
a DMT contact whose adhesion and stiffness depend on what lies under the tip (dopants and vacancies
differ from the pristine lattice). Optional pauses after each direction record ``PauseDataPoints``
points (z held, or the z-loop back on). ``Repetition`` measures every position again (``Position``) or
the whole list again (``List``); an empty list measures where the tip is. The tip travels between
positions at ``XYMoveSpeed``. With the tip withdrawn the curves are measured in free air: no contact,
no deflection.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin import validation
from twin.common.afm_vocabulary import (
    DataConversion,
    DataFilter,
    SpecChannel,
    SpecGroupNo,
    SpecModulatedOutput,
    SpecModulationMode,
    SpecPauseMode,
    SpecRepetitionMode,
)
from twin.instruments.afm import readout
from twin.instruments.afm.materials import contact_at
from twin.instruments.clock import Clock
from twin.physics.afm import force_curve
from twin.sample import Sample

GROUPS = (SpecGroupNo.Forward, SpecGroupNo.Backward, SpecGroupNo.ForwardPause, SpecGroupNo.BackwardPause)
CHANNELS = (SpecChannel.Deflection_or_ZCtrlIn, SpecChannel.Topography)


@dataclass
class Measurement:
    """Curves of every line (a position, once per repetition): ``curves[line][group]`` is a
    ``(2, points)`` array (deflection V, z m) in the order measured, revealed over time: line ``i``
    is done at ``ends[i]`` instrument seconds after the start; the tip travels during ``moves``."""

    curves: list[dict[int, np.ndarray]]
    started: float  # wall-clock reading at the start
    ends: np.ndarray  # s after the start at which each line is complete
    moves: list[tuple[float, float]]  # (from, to) s after the start: the tip travelling between positions

    def done(self, clock: Clock) -> int:
        elapsed = clock.elapsed(self.started)
        return len(self.curves) if math.isinf(elapsed) else int(np.searchsorted(self.ends, elapsed, "right"))

    def moving(self, clock: Clock) -> bool:
        elapsed = clock.elapsed(self.started)
        return not math.isinf(elapsed) and any(a <= elapsed < b for a, b in self.moves)


def _plan(positions: list[tuple[float, float]], repetition: int, mode: int) -> list[int]:
    """Which position each line measures: every position ``repetition`` times in a row (Position), or the
    whole list ``repetition`` times (List)."""
    indices = list(range(len(positions)))
    if mode == SpecRepetitionMode.Position:
        return [i for i in indices for _ in range(repetition)]
    return indices * repetition


class Spectroscopy:
    """Position list and the last measurement (the settings live in the AFM's settings, ``Spec.*``)."""

    def __init__(self, sample: Sample, clock: Clock, spring_constant: float, deflection_sensitivity: float):
        self.sample = sample
        self.clock = clock
        self.spring_constant = spring_constant
        self.sensitivity = deflection_sensitivity
        self._lock = threading.Lock()
        self._positions: list[tuple[float, float]] = []
        self._measurement: Measurement | None = None

    def clear_positions(self) -> None:
        with self._lock:
            self._positions = []

    def add_position(self, x: Any, y: Any, z: Any = 0.0, limit: float = 1e-3) -> None:
        x = validation.real("x", x, -limit, limit, "m")
        y = validation.real("y", y, -limit, limit, "m")
        validation.real("z", z, -1.0, 1.0, "m")
        with self._lock:
            self._positions.append((x, y))

    def positions(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._positions)

    @staticmethod
    def check(settings: dict[str, Any]) -> None:
        """Refuse settings the twin does not simulate, naming what it does."""
        if settings["Spec.ModulatedOutput"] != SpecModulatedOutput.ZAxis:
            raise ValueError(f"Spec.ModulatedOutput = {settings['Spec.ModulatedOutput']} modulates a "
                             "voltage, which the twin's spectroscopy does not simulate; allowed: 0 (ZAxis)")
        for direction in ("Fwd", "Bwd"):
            if settings[f"Spec.{direction}ModulationMode"] != SpecModulationMode.FixedLength:
                raise ValueError(f"Spec.{direction}ModulationMode = StopByValue is not simulated; "
                                 "allowed: 0 (FixedLength)")
        if settings["Spec.ActiveZController"]:
            raise ValueError("Spec.ActiveZController = True would keep the z-loop on while z is modulated; "
                             "allowed: False with ModulatedOutput ZAxis")
        if abs(settings["Spec.BwdModulationRange"]) != settings["Spec.FwdModulationRange"]:
            raise ValueError(f"Spec.BwdModulationRange = {settings['Spec.BwdModulationRange']!r} must be "
                             f"-Spec.FwdModulationRange = {-settings['Spec.FwdModulationRange']!r} here")
        points = {g: settings[f"Spec.{g}ModDataPoints"] for g in ("Fwd", "Bwd")}
        if points["Fwd"] != points["Bwd"]:
            raise ValueError(f"Spec.BwdModDataPoints = {points['Bwd']} must equal Spec.FwdModDataPoints = "
                             f"{points['Fwd']} here")

    def start(self, settings: dict[str, Any], tip_radius: float, surface_height: Any,
              offset: tuple[float, float], here: tuple[float, float], in_contact: bool) -> None:
        """Measure every listed position (scanner coordinates plus the stage ``offset``), or ``here``
        (where the tip is) when the list is empty; ``in_contact``: whether the tip is approached."""
        self.check(settings)
        positions = self.positions() or [here]
        lines = _plan(positions, settings["Spec.Repetition"], settings["Spec.RepetitionMode"])
        n, span = settings["Spec.FwdModDataPoints"], settings["Spec.FwdModulationRange"]
        lift = settings["Spec.StartOffset"]
        z = np.linspace(span / 2, -span / 2, n) + lift  # base height over the contact point, approaching
        by_position = {}
        for index in sorted(set(lines)):
            px, py = positions[index]
            by_position[index] = self._curves(px + offset[0], py + offset[1], z, settings, tip_radius,
                                              surface_height, in_contact)
        curves = [by_position[index] for index in lines]
        ends, moves, t, previous = [], [], 0.0, here
        offset_time = 2 * abs(lift) / settings["Spec.StartOffsetMoveSpeed"]
        curve_time = sum(settings[f"Spec.{d}{what}"] for d in ("Fwd", "Bwd")
                         for what in ("ModulationTime", "PauseTime"))
        for index in lines:
            travel = math.dist(previous, positions[index]) / settings["Spec.XYMoveSpeed"]
            if travel > 0:
                moves.append((t, t + travel))
            t += travel + offset_time + curve_time
            ends.append(t)
            previous = positions[index]
        measurement = Measurement(curves, self.clock.wall(), np.array(ends), moves)
        self.clock.pass_time(t)
        with self._lock:
            self._measurement = measurement

    def _curves(self, x: float, y: float, z: np.ndarray, settings: dict[str, Any], tip_radius: float,
                surface_height: Any, in_contact: bool) -> dict[int, np.ndarray]:
        """The four groups of one position: forward and backward curves, and the pauses after each."""
        height = float(surface_height(x, y))
        out: dict[int, np.ndarray] = {}
        contact = contact_at(self.sample, x, y) if in_contact else None
        for group, approaching, direction in ((SpecGroupNo.Forward, True, "Fwd"),
                                              (SpecGroupNo.Backward, False, "Bwd")):
            if contact is None:  # free air: the tip is far above whatever the base does
                deflection = np.zeros_like(z)
            else:
                deflection = force_curve(z, contact, tip_radius, self.spring_constant, approaching)
            curve = np.stack([deflection / self.sensitivity, height + z])
            out[group] = curve if approaching else curve[:, ::-1]  # in the order measured
            pause = settings[f"Spec.{direction}PauseDataPoints"]
            if pause:
                last = out[group][:, -1:]
                if settings[f"Spec.{direction}PauseMode"] == SpecPauseMode.ZControllerActive and in_contact:
                    last = np.array([[0.0], [height]])  # the loop brings the tip back to rest on the surface
                pause_group = SpecGroupNo.ForwardPause if approaching else SpecGroupNo.BackwardPause
                out[pause_group] = np.repeat(last, pause, axis=1)
        return out

    def is_measuring(self) -> bool:
        with self._lock:
            m = self._measurement
        return m is not None and m.done(self.clock) < len(m.curves)

    def is_moving(self) -> bool:
        """Whether the tip is travelling between positions now."""
        with self._lock:
            m = self._measurement
        return m is not None and m.moving(self.clock)

    def current_line(self) -> int:
        """Curves (lines) measured so far."""
        with self._lock:
            m = self._measurement
        return 0 if m is None else m.done(self.clock)

    def get_line(self, group: Any, channel: Any, line: Any, data_filter: Any = DataFilter.RAW,
                 conversion: Any = DataConversion.Physical) -> list[float] | list[int]:
        """One curve: ``group`` a SpecGroupNo (Forward 0, Backward 1, ForwardPause 2, BackwardPause 3),
        ``channel`` deflection (V) 0 / z (m) 1, ``line`` the curve's index in the order measured, values
        in that order, through the line ``filter`` (over the z travel) and the ``conversion``."""
        data_filter, conversion = readout.checked_filter_and_conversion(data_filter, conversion)
        with self._lock:
            m = self._measurement
        if m is None:
            raise RuntimeError("no spectroscopy has run yet; call Spec.Start() first")
        group = validation.one_of("group", group, GROUPS)
        channel = validation.one_of("channel", channel, CHANNELS)
        done = m.done(self.clock)
        line = validation.integer("line", line, 0, len(m.curves) - 1)
        if line >= done:
            raise ValueError(f"line = {line} has not been measured yet; allowed 0 to {done - 1}")
        if group not in m.curves[line]:
            direction = "Fwd" if group == SpecGroupNo.ForwardPause else "Bwd"
            raise ValueError(f"group = {group} is a pause, and Spec.{direction}PauseDataPoints was 0: "
                             "nothing was recorded there")
        curve = m.curves[line][group]
        travel = curve[SpecChannel.Topography]
        values = (readout.filtered(curve[channel], travel, data_filter) if np.ptp(travel) > 0
                  else np.asarray(curve[channel], dtype=np.float64))
        return readout.converted(values, conversion, 2e-6 if channel == SpecChannel.Topography else 20.0)
