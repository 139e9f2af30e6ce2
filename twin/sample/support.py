"""What the layers lie on: a flat substrate (seen by the AFM only) or a holey amorphous-carbon film, the
usual TEM grid: a carbon film with a square lattice of round holes, the 2-D material suspended across
them. The TEM sees amorphous carbon (Thon rings) on the film and only the crystal over a hole; the
AFM sees the film's top, and the crystal sagging into nothing over a hole.

The film's atoms are generated per cell from the seed: sites of a simple-cubic grid a little finer
than the film's density, as many chosen at random as the density asks, each displaced at random by
up to half the grid spacing, which leaves no trace of the grid in the diffractogram. Lengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STREAM = 0x484F4C  # random stream tag of the film's atoms
_CELL = 40.0  # Å: side of a generation cell


@dataclass(frozen=True)
class HoleyCarbon:
    """A film ``thickness`` thick whose top is at ``top``, with holes of ``hole_diameter`` on a square
    lattice of ``pitch`` (a hole centred on the origin), of amorphous carbon at ``density`` atoms/Å³
    (0.1: 2.0 g/cm³)."""

    top: float
    thickness: float
    hole_diameter: float
    pitch: float
    seed: int = 0
    density: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.hole_diameter < self.pitch:
            raise ValueError(f"holey carbon: hole diameter {self.hole_diameter!r} Å must be > 0 and below "
                             f"the pitch {self.pitch!r} Å")
        if not 0 < self.thickness <= 500.0:
            raise ValueError(f"holey carbon: thickness {self.thickness!r} Å must be > 0 and at most 500 Å")

    def in_hole(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points ``x``, ``y`` (Å) lie over a hole."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        dx = x - np.rint(x / self.pitch) * self.pitch
        dy = y - np.rint(y / self.pitch) * self.pitch
        return dx * dx + dy * dy < (self.hole_diameter / 2) ** 2

    def atoms(self, x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions (Å, ``(N, 3)``) and sites ``(cell x, cell y, k)`` of the film's atoms in the window."""
        spacing = self.density ** (-1 / 3)
        per_side, layers = int(np.ceil(_CELL / spacing)), int(np.ceil(self.thickness / spacing))
        step = _CELL / per_side
        count = int(round(self.density * _CELL**2 * self.thickness))  # the grid has a few spare sites
        grid = np.stack(np.meshgrid(np.arange(per_side), np.arange(per_side), np.arange(layers),
                                    indexing="ij"), axis=-1).reshape(-1, 3)
        positions, sites = [], []
        for cx in range(int(np.floor(x0 / _CELL)), int(np.floor(x1 / _CELL)) + 1):
            for cy in range(int(np.floor(y0 / _CELL)), int(np.floor(y1 / _CELL)) + 1):
                rng = np.random.default_rng([self.seed, _STREAM, cx + (1 << 40), cy + (1 << 40)])
                chosen = grid[np.sort(rng.choice(len(grid), count, replace=False))]
                jitter = rng.uniform(-0.5, 0.5, chosen.shape) * [step, step, self.thickness / layers]
                xyz = (chosen + 0.5) * [step, step, self.thickness / layers] + jitter
                xyz += [cx * _CELL, cy * _CELL, self.top - self.thickness]
                keep = ((xyz[:, 0] >= x0) & (xyz[:, 0] < x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] < y1)
                        & ~self.in_hole(xyz[:, 0], xyz[:, 1]))
                positions.append(xyz[keep])
                index = np.flatnonzero(keep)
                sites.append(np.column_stack([np.full(len(index), cx), np.full(len(index), cy), index]))
        return np.concatenate(positions), np.concatenate(sites)

    def atoms_per_area(self) -> float:
        """Film atoms per Å² of stage, holes averaged in."""
        open_fraction = np.pi * (self.hole_diameter / 2) ** 2 / self.pitch**2
        return self.density * self.thickness * (1 - open_fraction)
