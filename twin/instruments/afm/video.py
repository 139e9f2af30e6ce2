"""The AFM's optical cameras (``application.Video``): the sample from above with the cantilever over it,
or the lever from the side over the sample. Optical resolution, not atoms: what an operator aligns by.

Top view: 640 x 480 pixels of 1.5 µm around the tip; the sample's optical contrast is its height map
seen at that resolution (flakes, holes, steps darker as they are thicker), the cantilever a dark beam
from the left ending at the tip. Side view: the lever's silhouette above the sample's edge, the gap
between them as the approach left it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import image as mpl_image

from twin.sample import Sample, Window

SHAPE = (480, 640)  # rows, columns
PIXEL = 1.5e-6  # m per pixel at the sample (top view)
LEVER_WIDTH, LEVER_LENGTH = 30e-6, 200e-6  # m


def top_view(sample: Sample, tip: tuple[float, float]) -> np.ndarray:
    """Grey levels (float, 0..1, rows north up) of the sample around ``tip`` (m) with the lever over it."""
    rows, columns = SHAPE
    window = Window.around(tip[0], tip[1], columns * PIXEL, rows * PIXEL)
    x = window.x_min + (np.arange(columns) + 0.5) * PIXEL
    y = window.y_max - (np.arange(rows) + 0.5) * PIXEL  # row 0 at the top: north up
    heights = np.asarray(sample.surface_height(x[None, :], y[:, None]), dtype=float)
    relief = heights - heights.min()
    picture = 0.75 - 0.25 * np.tanh(relief / 2e-9)  # thicker material reflects less
    y, x = np.indices(SHAPE)
    centre_row, centre_column = rows // 2, columns // 2
    lever = ((x <= centre_column) & (x >= centre_column - LEVER_LENGTH / PIXEL)
             & (np.abs(y - centre_row) <= LEVER_WIDTH / PIXEL / 2))
    picture[lever] = 0.15
    return np.clip(picture, 0.0, 1.0)


def side_view(gap: float) -> np.ndarray:
    """Grey levels of the lever seen from the side, ``gap`` (m) above the sample's surface."""
    rows, columns = SHAPE
    picture = np.full(SHAPE, 0.85)
    surface = int(rows * 0.7)
    picture[surface:] = 0.45  # the sample
    apex = surface - int(min(gap, 600e-6) / 2e-6)  # 2 µm per pixel
    tip = columns // 2
    picture[max(0, apex - 12):max(1, apex - 8), : tip + 3] = 0.1  # the lever, ending over the tip
    picture[max(0, apex - 8):max(1, apex), tip - 2: tip + 3] = 0.1  # the tip, pointing down
    return picture


def save(path: Path, picture: np.ndarray) -> None:
    """Write ``picture`` as an 8-bit grey image (the format from the suffix: .jpg, .png, .bmp, .tif)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mpl_image.imsave(path, picture, cmap="gray", vmin=0.0, vmax=1.0)
