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
    z = np.ascontiguousarray(positions[:, 2])
    columns = []  # for each column offset: the column, the squared distance to its x-range, where it may hit
    for dc in range(-reach, reach + 1):
        cc = col + dc
        dx = np.maximum(np.maximum(cc - x, x - (cc + 1)), 0.0)
        dx2 = dx * dx
        may = (dx2 < r2) & (cc >= 0) & (cc < nx)
        if may.any():
            columns.append((cc, dx2, may))
    for dr in range(-reach, reach + 1):
        rr = row + dr
        dy = np.maximum(np.maximum(rr - y, y - (rr + 1)), 0.0)  # distance to the pixel's y-range
        dy2 = dy * dy
        may_row = (dy2 < r2) & (rr >= 0) & (rr < ny)  # d2 >= dy² rules the others out
        if not may_row.any():
            continue
        for cc, dx2, may in columns:
            d2 = dx2 + dy2
            at = np.flatnonzero((d2 < r2) & may & may_row)
            if len(at) == 0:
                continue
            top = z[at] + pixel * np.sqrt(r2[at] - d2[at])
            np.maximum.at(height, rr[at] * nx + cc[at], top)
    return height.reshape(shape)
