"""AFM topography: van der Waals surface of the atoms, dilated by a paraboloid tip.

Maps are ``[row, column] = [y, x]``; pixel ``(r, c)`` covers
``[x0 + c p, x0 + (c + 1) p) × [y0 + r p, y0 + (r + 1) p)``. All lengths are metres.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


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


def tip_reach(tip_radius: float, depth: float) -> float:
    """Lateral distance (m) at which a paraboloid tip's flank lies ``depth`` below its apex."""
    return float(np.sqrt(2.0 * tip_radius * max(depth, 0.0)))


def paraboloid_dilation(height: np.ndarray, pixel: float, tip_radius: float) -> np.ndarray:
    """Apex height of a paraboloid tip of radius ``tip_radius`` (m) touching the surface.

    This is the grey-scale dilation by ``-(dx² + dy²) / (2 R)``; the paraboloid is separable, so
    two exact 1-D dilations replace one 2-D dilation. Only the part of the tip within the map's
    height range can touch, which bounds the structuring element.
    """
    half = int(np.ceil(tip_reach(tip_radius, float(np.ptp(height))) / pixel))
    if half == 0:
        return height.copy()
    offsets = np.arange(-half, half + 1) * pixel
    profile = -(offsets**2) / (2.0 * tip_radius)
    rows = ndimage.grey_dilation(height, structure=profile[None, :], mode="nearest")
    return ndimage.grey_dilation(rows, structure=profile[:, None], mode="nearest")
