"""Polycrystalline sheets: a region cut into grains (a Voronoi tessellation of seeded centres), each
grain the same crystal turned and shifted its own way. Each grain is a layer of its own, present
only on its cell (a polygon flake), so its defects sit on its own lattice; where two grains meet,
the atoms one grain's lattice puts too close to the other's are left out (the boundary).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Voronoi

from twin.sample.regions import Flake

_STREAM = 0x475241  # random stream tag of the grains


def grain_cells(region: tuple[tuple[float, float], tuple[float, float]], size: float, seed: int,
                layer: int) -> list[tuple[np.ndarray, float, tuple[float, float]]]:
    """The grains of a rectangular ``region`` (m) of mean diameter ``size`` (m): for each, its cell (a
    polygon, m), its orientation (rad, uniform) and its lattice origin (m)."""
    (x0, x1), (y0, y1) = region
    rng = np.random.default_rng([seed, _STREAM, layer])
    nx, ny = max(1, int(round((x1 - x0) / size))), max(1, int(round((y1 - y0) / size)))
    grid = np.stack(np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny), -1).reshape(-1, 2)
    centres = (grid + rng.uniform(-0.35, 0.35, grid.shape) / [nx, ny]) * [x1 - x0, y1 - y0] + [x0, y0]
    # mirrored copies across the four sides close every cell of the originals inside the rectangle
    mirrored = [centres,
                np.column_stack([2 * x0 - centres[:, 0], centres[:, 1]]),
                np.column_stack([2 * x1 - centres[:, 0], centres[:, 1]]),
                np.column_stack([centres[:, 0], 2 * y0 - centres[:, 1]]),
                np.column_stack([centres[:, 0], 2 * y1 - centres[:, 1]])]
    diagram = Voronoi(np.concatenate(mirrored))
    grains = []
    for n in range(len(centres)):
        cell = diagram.vertices[diagram.regions[diagram.point_region[n]]]
        order = np.argsort(np.arctan2(*(cell - cell.mean(axis=0)).T[::-1]))
        grains.append((cell[order], float(rng.uniform(0, 2 * np.pi)),
                       (float(rng.uniform(0, size)), float(rng.uniform(0, size)))))
    return grains


def grain_flake(cell: np.ndarray) -> Flake:
    return Flake("polygon", vertices=tuple((float(x), float(y)) for x, y in cell))


def boundaries(cells: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Edges (m) shared by two cells: the grain boundaries."""
    edges: dict[tuple[tuple[float, float], tuple[float, float]], int] = {}
    for cell in cells:
        for a, b in zip(cell, np.roll(cell, -1, axis=0), strict=True):
            key = tuple(sorted((tuple(np.round(a, 15)), tuple(np.round(b, 15)))))
            edges[key] = edges.get(key, 0) + 1
    return [(np.array(a), np.array(b)) for (a, b), count in edges.items() if count == 2]
