"""AFM spectroscopy: force-distance curves at a list of positions over the shared sample.

At each position the cantilever's base moves ``ModulationRange`` towards the surface (forward) and
back (backward) in ``ModulationTime`` each; the deflection follows a DMT contact whose adhesion and
stiffness depend on what lies under the tip (dopants and vacancies differ from the pristine lattice).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin import validation
from twin.instruments.afm import readout
from twin.instruments.afm.materials import contact_at
from twin.instruments.afm.vocabulary import DataConversion, DataFilter
from twin.instruments.clock import Clock
from twin.physics.afm import force_curve
from twin.sample import Sample

ANGSTROM = 1e-10
class SpecGroup:
    Forward, Backward = 0, 1


class SpecChannel:
    Deflection_or_ZCtrlIn, Topography = 0, 1


@dataclass
class Measurement:
    """Curves at every position: ``data[position, group, channel, point]``, revealed over time."""

    data: np.ndarray
    started: float
    per_position: float
    positions: list[tuple[float, float]]

    def done(self, clock: Clock) -> int:
        elapsed = clock.elapsed(self.started)
        if math.isinf(elapsed):
            return len(self.positions)
        return min(len(self.positions), int(elapsed // self.per_position))


class Spectroscopy:
    """Position list, settings and the last measurement."""

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

    def start(self, settings: dict[str, Any], tip_radius: float, surface_height: Any,
              offset: tuple[float, float]) -> None:
        """Measure every listed position (scanner coordinates plus the stage ``offset``)."""
        with self._lock:
            positions = list(self._positions)
        if not positions:
            raise RuntimeError("the position list is empty; call Spec.AddPosition(x, y, 0) first")
        points = {g: settings[f"Spec.{g}ModDataPoints"] for g in ("Fwd", "Bwd")}
        if points["Fwd"] != points["Bwd"]:
            raise ValueError(f"Spec.BwdModDataPoints = {points['Bwd']} must equal Spec.FwdModDataPoints = "
                             f"{points['Fwd']} here")
        n, span = points["Fwd"], settings["Spec.FwdModulationRange"]
        z = np.linspace(span / 2, -span / 2, n)  # base height over the contact point, approaching
        data = np.empty((len(positions), 2, 2, n))
        for i, (px, py) in enumerate(positions):
            x, y = px + offset[0], py + offset[1]
            contact = contact_at(self.sample, x, y)
            height = float(surface_height(x, y))
            for group, approaching, heights in ((SpecGroup.Forward, True, z), (SpecGroup.Backward, False, z)):
                deflection = force_curve(heights, contact, tip_radius, self.spring_constant, approaching)
                data[i, group, SpecChannel.Deflection_or_ZCtrlIn] = deflection / self.sensitivity
                data[i, group, SpecChannel.Topography] = height + heights
            data[i, SpecGroup.Backward] = data[i, SpecGroup.Backward][:, ::-1]  # in the order measured
        per_position = settings["Spec.FwdModulationTime"] + settings["Spec.BwdModulationTime"]
        measurement = Measurement(data, self.clock.wall(), per_position, positions)
        self.clock.pass_time(per_position * len(positions))
        with self._lock:
            self._measurement = measurement

    def is_measuring(self) -> bool:
        with self._lock:
            m = self._measurement
        return m is not None and m.done(self.clock) < len(m.positions)

    def get_line(self, group: Any, channel: Any, line: Any, data_filter: Any = DataFilter.RAW,
                 conversion: Any = DataConversion.Physical) -> list[float] | list[int]:
        """One curve: ``group`` Forward 0 / Backward 1, ``channel`` deflection (V) 0 / z (m) 1, ``line``
        the position's index, values in the order measured, through the line ``filter`` (over the
        z travel) and the ``conversion``."""
        data_filter, conversion = readout.checked_filter_and_conversion(data_filter, conversion)
        with self._lock:
            m = self._measurement
        if m is None:
            raise RuntimeError("no spectroscopy has run yet; call Spec.Start() first")
        group = validation.one_of("group", group, (SpecGroup.Forward, SpecGroup.Backward))
        channels = (SpecChannel.Deflection_or_ZCtrlIn, SpecChannel.Topography)
        channel = validation.one_of("channel", channel, channels)
        done = m.done(self.clock)
        line = validation.integer("line", line, 0, len(m.positions) - 1)
        if line >= done:
            raise ValueError(f"line = {line} has not been measured yet; allowed 0 to {done - 1}")
        travel = m.data[line, group, SpecChannel.Topography]
        values = readout.filtered(m.data[line, group, channel], travel, data_filter)
        return readout.converted(values, conversion, 2e-6 if channel == SpecChannel.Topography else 20.0)
