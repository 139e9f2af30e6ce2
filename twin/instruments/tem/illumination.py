"""The TEM's parallel beam on the specimen: the disk the condenser lights, the dose it gives, and which
pixels of an image it reaches."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import constants

from twin.instruments.tem.hardware import TemHardware
from twin.sample import Window

State = dict[str, Any]


def beam_diameter(state: State, hardware: TemHardware, fov: float) -> float:
    """The TEM beam's diameter (m): at the default ``optics.intensity`` the condenser spreads it just
    over the camera's field of view ``fov`` (never below ``min_beam_diameter``), following the
    magnification; the diameter grows in proportion to the intensity's distance from crossover,
    down to the crossover's own size."""
    spread = abs(state["optics.intensity"] - hardware.crossover_intensity) / abs(
        hardware.default_intensity - hardware.crossover_intensity)
    return max(hardware.crossover_diameter, max(hardware.min_beam_diameter, np.sqrt(2.0) * fov) * spread)


def dose_per_area(current: float, exposure: float, diameter: float) -> float:
    """Electrons per m² a beam of ``current`` (A) gives in ``exposure`` s inside its disk of ``diameter``
    (m)."""
    return current * exposure / constants.e / (np.pi * diameter**2 / 4.0)


def disk(window: Window, size: int, centre: np.ndarray, diameter: float) -> np.ndarray:
    """1 for the pixels of a ``size``² image of ``window`` inside the disk of ``diameter`` (m) around
    ``centre`` (m), 0 outside."""
    pixel = window.width / size
    x = window.x_min + (np.arange(size) + 0.5) * pixel
    y = window.y_min + (np.arange(size) + 0.5) * pixel
    inside = (x[None, :] - centre[0]) ** 2 + (y[:, None] - centre[1]) ** 2 <= diameter**2 / 4
    return inside.astype(np.float64)


def illuminated(window: Window, size: int, beam: np.ndarray, diameter: float) -> np.ndarray | float:
    """Per pixel of a ``size``² image of ``window``, 1 inside the beam's disk of ``diameter`` (m)
    centred on ``beam`` (m), 0 outside (just 1 when the disk covers the whole window)."""
    corners = np.array([[window.x_min, window.y_min], [window.x_max, window.y_max],
                        [window.x_min, window.y_max], [window.x_max, window.y_min]])
    if np.hypot(*(corners - beam).T).max() <= diameter / 2:
        return 1.0
    return disk(window, size, beam, diameter)
