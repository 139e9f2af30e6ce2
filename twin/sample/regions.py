"""Where a layer exists on the stage: flakes of simple shapes (discs, hexagons, rectangles, polygons).

Coordinates are metres in the sample frame. A layer without flakes covers the whole stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Flake:
    """One flake: ``shape`` "disc" (``size`` = radius), "hexagon" (``size`` = circumradius),
    "rectangle" (``size`` = half-width, ``aspect`` = height/width) or "polygon" (``vertices``, m);
    centred at ``centre`` (m) and turned by ``rotation`` (rad) about it."""

    shape: str
    centre: tuple[float, float] = (0.0, 0.0)
    size: float = 0.0
    rotation: float = 0.0
    aspect: float = 1.0
    vertices: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"flake shape = {self.shape!r} is not known; allowed: {', '.join(SHAPES)}")
        if self.shape == "polygon" and len(self.vertices) < 3:
            raise ValueError(f"a polygon flake needs at least 3 vertices, got {len(self.vertices)}")
        if self.shape != "polygon" and not self.size > 0:
            raise ValueError(f"flake size = {self.size!r} m must be > 0 for a {self.shape}")

    def outline(self) -> np.ndarray:
        """Vertices (N, 2) in m of the flake's boundary (a disc as a 256-gon)."""
        return self._outline.copy()

    @cached_property
    def _outline(self) -> np.ndarray:
        if self.shape == "polygon":
            return np.asarray(self.vertices, dtype=float)
        if self.shape == "rectangle":
            local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [self.size, self.size * self.aspect]
        else:
            n = 6 if self.shape == "hexagon" else 256
            angle = np.arange(n) * 2 * np.pi / n
            local = self.size * np.column_stack([np.cos(angle), np.sin(angle)])
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return local @ np.array([[c, s], [-s, c]]) + np.asarray(self.centre)

    @cached_property
    def _bounds(self) -> tuple[float, float, float, float]:
        outline = self._outline
        return (*outline.min(axis=0), *outline.max(axis=0))

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` (m) of the flake."""
        return self._bounds

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points ``x``, ``y`` (m) lie inside (even-odd rule)."""
        x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        if self.shape == "disc":
            return np.hypot(x - self.centre[0], y - self.centre[1]) < self.size
        outline = self._outline
        inside = np.zeros(x.shape, dtype=bool)
        for (x0, y0), (x1, y1) in zip(outline, np.roll(outline, -1, axis=0), strict=True):
            crosses = (y0 > y) != (y1 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (x < at)
        return inside


SHAPES = ("disc", "hexagon", "rectangle", "polygon")


def covered(flakes: tuple[Flake, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether points ``x``, ``y`` (m) lie on any of ``flakes`` (everywhere when there are none)."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    if not flakes:
        return np.ones(x.shape, dtype=bool)
    inside = np.zeros(x.shape, dtype=bool)
    for flake in flakes:
        x0, y0, x1, y1 = flake.bounds()
        near = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        if near.any():
            inside[near] |= flake.contains(x[near], y[near])
    return inside
