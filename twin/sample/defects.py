"""Sparse point defects generated cell by cell from the seed, so any window is reproducible.

The plane is tiled into square cells. The defects of a cell come from a random generator seeded
with ``(seed, cell index, defect kind)``, so they never depend on which window asked first and
nothing is stored. A defect belongs to the cell that contains its lattice site. Lengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.sample.lattice import Crystal2D

_INDEX_OFFSET = 1 << 40  # keeps negative cell indices non-negative for the seed sequence


def defect_label(kind: str, species: str | None) -> str:
    """Human-readable kind of defect: ``"vacancy"`` or ``"N substitution"``."""
    return "vacancy" if kind == "vacancy" else f"{species} substitution"


@dataclass(frozen=True)
class DefectSpec:
    """A kind of point defect and how often it occurs.

    ``kind`` is ``"vacancy"`` or ``"substitution"``; ``species`` replaces the host atom for a
    substitution; ``sublattices`` are the basis indices it may occupy; ``density`` is per nm²;
    ``z_offset`` (Å) lifts the substituted atom out of the plane (e.g. Si in graphene).
    """

    kind: str
    density: float
    sublattices: tuple[int, ...]
    species: str | None = None
    z_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("vacancy", "substitution"):
            raise ValueError(
                f"defect kind = {self.kind!r} is not allowed; allowed: 'vacancy', 'substitution'"
            )
        if (self.kind == "substitution") != (self.species is not None):
            raise ValueError("a substitution needs a species and a vacancy must not have one")

    @property
    def label(self) -> str:
        return defect_label(self.kind, self.species)


@dataclass(frozen=True)
class SiteDefect:
    """A defect on lattice site ``(i, j, b)`` at in-plane position ``(x, y)`` Å."""

    spec: DefectSpec
    i: int
    j: int
    b: int
    x: float
    y: float


class DefectField:
    """Seeded defects of a crystal, generated per cell on demand."""

    def __init__(
        self,
        crystal: Crystal2D,
        specs: tuple[DefectSpec, ...],
        seed: int,
        rotation: float,
        cell_size: float = 200.0,
    ) -> None:
        self.crystal = crystal
        self.specs = specs
        self.seed = seed
        self.rotation = rotation
        self.cell_size = cell_size

    def in_window(self, x0: float, y0: float, x1: float, y1: float) -> list[SiteDefect]:
        """Defects whose site lies in ``[x0, x1) × [y0, y1)`` (Å)."""
        found: list[SiteDefect] = []
        for cx in range(int(np.floor(x0 / self.cell_size)), int(np.floor(x1 / self.cell_size)) + 1):
            for cy in range(int(np.floor(y0 / self.cell_size)), int(np.floor(y1 / self.cell_size)) + 1):
                found.extend(
                    d for d in self._cell(cx, cy) if x0 <= d.x < x1 and y0 <= d.y < y1
                )
        return found

    def _cell(self, cx: int, cy: int) -> list[SiteDefect]:
        size = self.cell_size
        taken: set[tuple[int, int, int]] = set()
        defects: list[SiteDefect] = []
        for stream, spec in enumerate(self.specs):
            rng = np.random.default_rng(
                [self.seed, cx + _INDEX_OFFSET, cy + _INDEX_OFFSET, stream]
            )
            count = rng.poisson(spec.density * size * size / 100.0)  # density per nm², cell in Å²
            if count == 0:
                continue
            points = (np.array([cx, cy]) + rng.random((count, 2))) * size
            b = rng.choice(np.array(spec.sublattices), count)
            i, j = self.crystal.nearest_site(points[:, 0], points[:, 1], b, self.rotation)
            positions = self.crystal.site_positions(i, j, b, self.rotation)
            for k in range(count):
                x, y = positions[k, 0], positions[k, 1]
                site = (int(i[k]), int(j[k]), int(b[k]))
                owned = np.floor(x / size) == cx and np.floor(y / size) == cy
                if owned and site not in taken:
                    taken.add(site)
                    defects.append(SiteDefect(spec, *site, float(x), float(y)))
        return defects
