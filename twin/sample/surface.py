"""The van der Waals surface of a set of atoms: the union of their spheres, seen from above.

This is the sample's own top surface (what an ideal, infinitely sharp tip would see); the tips that
dilate it and the z-loop that follows it are physics (:mod:`twin.physics.afm`). Maps are
``[row, column] = [y, x]``; pixel ``(r, c)`` covers ``[x0 + c p, x0 + (c + 1) p)`` by
``[y0 + r p, y0 + (r + 1) p)``. All lengths are metres.
"""

from __future__ import annotations

import numpy as np


def vdw_height_map(
    positions: np.ndarray,
    radii: np.ndarray,
    origin: tuple[float, float],
    pixel: float,
    shape: tuple[int, int],
    floor: float,
) -> np.ndarray:
    """Highest point of the union of atomic spheres within each pixel (m).

    ``positions`` (N, 3) and ``radii`` (N,) in m. Taking the maximum over the pixel's area, rather
    than the value at its centre, keeps atoms smaller than a pixel from vanishing; after dilation
    by a tip of radius ``R`` this differs from point sampling by at most ``pixel² / (8 R)``.
    Pixels that no sphere reaches stay at ``floor``.
    """
    ny, nx = shape
    height = np.full(ny * nx, floor, dtype=np.float64)
    if len(positions) == 0:
        return height.reshape(shape)
    x = (positions[:, 0] - origin[0]) / pixel
    y = (positions[:, 1] - origin[1]) / pixel
    col, row = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    reach = int(np.ceil(radii.max() / pixel))
    r2 = (radii / pixel) ** 2
    for dr in range(-reach, reach + 1):
        rr = row + dr
        dy = np.maximum(np.maximum(rr - y, y - (rr + 1)), 0.0)  # distance to the pixel's y-range
        for dc in range(-reach, reach + 1):
            cc = col + dc
            dx = np.maximum(np.maximum(cc - x, x - (cc + 1)), 0.0)
            d2 = dx * dx + dy * dy
            hit = (d2 < r2) & (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
            if not hit.any():
                continue
            top = positions[hit, 2] + pixel * np.sqrt(r2[hit] - d2[hit])
            np.maximum.at(height, rr[hit] * nx + cc[hit], top)
    return height.reshape(shape)
