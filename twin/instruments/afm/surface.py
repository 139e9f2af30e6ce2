"""What the tip's apex follows: the van der Waals surface of the atoms (or, where single atoms are far
below a pixel, the smooth surface) dilated by the tip, on a grid fine enough for the pixel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data.vdw_alvarez import vdw_radii
from scipy import ndimage

from twin.constants import ANGSTROM
from twin.instruments.afm.hardware import AfmHardware
from twin.physics.afm import Tip, tip_dilation, tip_reach, vdw_height_map
from twin.sample import Window
from twin.sample.frames import FramedSample


@dataclass(frozen=True)
class ApexMap:
    """Apex heights (m) on a square grid: cell ``(r, c)`` centred at ``origin + ((c, r) + 1/2) step``."""

    apex: np.ndarray
    origin: tuple[float, float]
    step: float
    method: str

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Apex height (m) at sample-frame points ``x``, ``y`` (m), bilinear between cells."""
        cols = (np.asarray(x) - self.origin[0]) / self.step - 0.5
        rows = (np.asarray(y) - self.origin[1]) / self.step - 0.5
        return ndimage.map_coordinates(self.apex, [rows, cols], order=1, mode="nearest")


def finest_step(tip_radius: float, hardware: AfmHardware) -> float:
    """The finest lateral step (m) worth simulating for a tip of ``tip_radius`` (m)."""
    return float(np.clip(np.sqrt(8 * tip_radius * hardware.height_tolerance), 0.2 * ANGSTROM,
                         2 * ANGSTROM))


def apex_map(sample: FramedSample, hardware: AfmHardware, window: Window, pixel: float, tip: Tip,
             image_pixel: float | None = None) -> ApexMap:
    """The apex height of ``tip`` over ``window`` (m, the AFM's frame) on an internal square grid fine
    enough that taking each cell's highest point is as good as point sampling, or no finer than
    ``pixel``; where single atoms do not matter, the smooth surface no finer than ``image_pixel``."""
    finest = finest_step(tip.radius, hardware)
    step = float(np.clip(pixel, 0.2 * ANGSTROM, finest))
    apexes = [np.hypot(dx, dy) for dx, dy, _ in tip.extra_apexes]
    margin = tip_reach(tip.radius, 1e-9) + 3 * ANGSTROM + max(apexes, default=0.0)
    margin = np.ceil(margin / step) * step
    padded = window.grown(margin)
    shape = (int(np.ceil(padded.height / step)) + 1, int(np.ceil(padded.width / step)) + 1)
    atoms_expected = sample.atom_density() * padded.width * padded.height
    cells = shape[0] * shape[1]
    if atoms_expected <= hardware.atom_limit and cells <= hardware.fine_grid_limit:
        atoms = sample.atoms_in_window(padded)
        positions = atoms.positions * ANGSTROM + np.array([padded.x_min, padded.y_min, 0.0])
        radii = vdw_radii[atoms.numbers] * ANGSTROM
        surface = vdw_height_map(positions, radii, (padded.x_min, padded.y_min), step, shape,
                                 sample.floor_height)
        method = "atoms"
    else:  # single atoms are far below a pixel: the smooth surface is what the tip sees
        coarsest = np.sqrt(padded.width * padded.height / hardware.fine_grid_limit)
        step = max(image_pixel or pixel, finest, coarsest)
        shape = (int(np.ceil(padded.height / step)) + 1, int(np.ceil(padded.width / step)) + 1)
        xs = padded.x_min + (np.arange(shape[1]) + 0.5) * step
        ys = padded.y_min + (np.arange(shape[0]) + 0.5) * step
        surface = sample.surface_height(xs[None, :], ys[:, None])
        method = "continuum"
    return ApexMap(tip_dilation(surface, step, tip), (padded.x_min, padded.y_min), step, method)


def topography(sample: FramedSample, hardware: AfmHardware, window: Window, points: int, lines: int,
               tip: Tip) -> tuple[np.ndarray, str, float]:
    """Noise-free apex height (m) at each pixel centre, ``[lines, points]``, as ideal feedback would
    record it; with the method (atoms or continuum) and the internal sampling (m)."""
    px, py = window.width / points, window.height / lines
    surface = apex_map(sample, hardware, window, min(px, py), tip)
    x = window.x_min + (np.arange(points) + 0.5) * px
    y = window.y_min + (np.arange(lines) + 0.5) * py
    xx, yy = np.meshgrid(x, y)
    return surface.sample(xx, yy), surface.method, surface.step
