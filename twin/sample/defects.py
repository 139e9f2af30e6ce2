"""Defects and features of a layer, generated cell by cell from the seed, so any window is reproducible.

The plane is tiled into square cells. The features of a cell come from a random generator seeded
with ``(seed, cell index, kind)``, so they never depend on which window asked first and nothing is
stored. A feature belongs to the cell that contains its anchor site. Lengths in Å.

Kinds: ``vacancy`` and ``substitution`` (one site), ``multivacancy`` (the ``size`` sites nearest to
the anchor), ``pore`` (every site within a radius ``size``), ``adsorbate`` (an atom ``height`` above
the layer's top at the anchor), ``contamination`` (an amorphous hydrocarbon patch of radius ``size``
and thickness ``height``), ``stone-wales`` (the bond from the anchor to its basis-1 neighbour turned by
90° about its middle), ``wrinkle`` (the layer lifted in a ridge ``height`` high and ``width`` wide, of
length ``size``, in a direction drawn from the seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from twin.common.geometry import defect_label
from twin.sample.lattice import Crystal2D

_CACHED_CELLS = 16384  # cells of generated features kept per layer (a few MB): views move, cells repeat
_INDEX_OFFSET = 1 << 40  # keeps negative cell indices non-negative for the seed sequence
KINDS = ("vacancy", "substitution", "multivacancy", "stone-wales", "pore", "adsorbate", "contamination",
         "wrinkle")
EXTENDED = ("multivacancy", "pore", "contamination", "wrinkle")  # kinds that reach beyond their anchor


@dataclass(frozen=True)
class DefectSpec:
    """A kind of defect or feature and how often it occurs.

    ``density`` is per nm²; ``at`` lists further anchors (Å) placed whatever the density.
    ``sublattices`` are the basis indices an anchor may occupy (empty: any). ``species`` is the
    substituting or adsorbed element; ``z_offset`` (Å) lifts a substituted atom out of the plane
    (Si in graphene). ``size`` is a range: atoms removed (multivacancy) or radius in Å (pore,
    contamination). ``height`` (Å): an adsorbate's height above the layer's top atoms, or a
    contamination patch's thickness.
    """

    kind: str
    density: float = 0.0
    sublattices: tuple[int, ...] = ()
    species: str | None = None
    z_offset: float = 0.0
    size: tuple[float, float] = (0.0, 0.0)
    height: float = 0.0
    at: tuple[tuple[float, float], ...] = ()
    width: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"defect kind = {self.kind!r} is not allowed; allowed: {', '.join(KINDS)}")
        if (self.kind in ("substitution", "adsorbate")) != (self.species is not None):
            needs = "needs" if self.species is None else "must not have"
            raise ValueError(f"a {self.kind} {needs} a species")
        if self.density < 0:
            raise ValueError(f"density = {self.density!r} per nm² must be >= 0")
        lo, hi = self.size
        if self.kind in EXTENDED and not 0 < lo <= hi:
            raise ValueError(f"a {self.kind} needs a size range 0 < lo <= hi, got {self.size!r}")
        if self.kind in ("adsorbate", "contamination", "wrinkle") and self.height <= 0:
            raise ValueError(f"a {self.kind} needs a height > 0 Å, got {self.height!r}")
        if self.kind == "wrinkle" and self.width <= 0:
            raise ValueError(f"a wrinkle needs a width > 0 Å, got {self.width!r}")

    @property
    def label(self) -> str:
        return defect_label(self.kind, self.species)

    @property
    def reach(self) -> float:
        """How far (Å) from its anchor the feature can change atoms."""
        if self.kind == "multivacancy":
            return 2.0 * np.sqrt(self.size[1]) + 3.0  # n sites of a ~5 Å² cell lie within this
        if self.kind == "wrinkle":
            return self.size[1] / 2 + 4 * self.width
        if self.kind == "stone-wales":
            return 3.0
        return self.size[1] if self.kind in ("pore", "contamination") else 0.0


@dataclass(frozen=True)
class SiteDefect:
    """A feature anchored on lattice site ``(i, j, b)`` at in-plane position ``(x, y)`` Å, of drawn
    ``size`` (atoms or Å; 0 for single-site kinds) and with its own ``seed`` for any atoms it adds."""

    spec: DefectSpec
    i: int
    j: int
    b: int
    x: float
    y: float
    size: float = 0.0
    seed: int = 0


class DefectField:
    """Seeded defects of one layer's crystal, generated per cell on demand."""

    def __init__(
        self,
        crystal: Crystal2D,
        specs: tuple[DefectSpec, ...],
        seed: int,
        rotation: float,
        cell_size: float = 200.0,
        layer: int = 0,
        shift: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.crystal = crystal
        self.specs = specs
        self.seed = seed
        self.rotation = rotation
        self.cell_size = cell_size
        self.layer = layer
        self.shift = np.asarray(shift, dtype=float)  # Å: the layer's lattice origin in the plane
        self.reach = max((spec.reach for spec in specs), default=0.0)
        self._cell = lru_cache(maxsize=_CACHED_CELLS)(self._generate_cell)  # thread-safe, per field

    def in_window(self, x0: float, y0: float, x1: float, y1: float) -> list[SiteDefect]:
        """Features whose anchor lies in ``[x0, x1) × [y0, y1)`` (Å)."""
        found: list[SiteDefect] = []
        for cx in range(int(np.floor(x0 / self.cell_size)), int(np.floor(x1 / self.cell_size)) + 1):
            for cy in range(int(np.floor(y0 / self.cell_size)), int(np.floor(y1 / self.cell_size)) + 1):
                found.extend(
                    d for d in self._cell(cx, cy) if x0 <= d.x < x1 and y0 <= d.y < y1
                )
        return found

    def _generate_cell(self, cx: int, cy: int) -> list[SiteDefect]:
        size = self.cell_size
        taken: set[tuple[int, int, int]] = set()
        defects: list[SiteDefect] = []
        n_basis = len(self.crystal.basis)
        for stream, spec in enumerate(self.specs):
            key = [self.seed, cx + _INDEX_OFFSET, cy + _INDEX_OFFSET, stream]
            rng = np.random.default_rng(key if self.layer == 0 else [*key, self.layer])
            count = rng.poisson(spec.density * size * size / 100.0)  # density per nm², cell in Å²
            points = (np.array([cx, cy]) + rng.random((count, 2))) * size
            explicit = np.array([p for p in spec.at if np.floor(p[0] / size) == cx
                                 and np.floor(p[1] / size) == cy]).reshape(-1, 2)
            points = np.concatenate([points, explicit])
            if len(points) == 0:
                continue
            sublattices = np.array(spec.sublattices or range(n_basis))
            b = rng.choice(sublattices, len(points))
            sizes = rng.uniform(*spec.size, len(points))
            seeds = rng.integers(0, 2**63, len(points))
            i, j = self.crystal.nearest_site(*(points - self.shift).T, b, self.rotation)
            positions = self.crystal.site_positions(i, j, b, self.rotation)[:, :2] + self.shift
            for k in range(len(points)):
                x, y = positions[k]
                site = (int(i[k]), int(j[k]), int(b[k]))
                owned = np.floor(x / size) == cx and np.floor(y / size) == cy
                if owned and site not in taken:
                    taken.add(site)
                    drawn = float(np.rint(sizes[k])) if spec.kind == "multivacancy" else float(sizes[k])
                    defects.append(SiteDefect(spec, *site, float(x), float(y), drawn, int(seeds[k])))
        return defects


def contamination_atoms(defect: SiteDefect, base: float) -> tuple[np.ndarray, list[str]]:
    """Atoms (Å, ``(N, 3)``) and elements of an amorphous hydrocarbon patch: a dome of radius
    ``defect.size`` and peak thickness ``spec.height`` on the plane ``z = base``, about one C and one
    H per 18 Å³ (a-C:H near 1.2 g/cm³), placed at random with the patch's own seed."""
    rng = np.random.default_rng([defect.seed, 0x434F4E])
    radius, thickness = defect.size, defect.spec.height
    volume = np.pi * radius**2 * thickness / 2  # paraboloid dome
    count = rng.poisson(volume / 18.0)
    r = radius * np.sqrt(rng.random(count))
    angle = rng.uniform(0, 2 * np.pi, count)
    top = thickness * (1 - (r / radius) ** 2)
    z = base + 1.0 + rng.random(count) * top
    xyz = np.column_stack([defect.x + r * np.cos(angle), defect.y + r * np.sin(angle), z])
    carbon = np.arange(count) % 2 == 0
    return xyz, ["C" if c else "H" for c in carbon]


def multivacancy_sites(crystal: Crystal2D, defect: SiteDefect, rotation: float,
                       shift: np.ndarray) -> set[tuple[int, int, int]]:
    """The ``defect.size`` lattice sites nearest to the anchor (the anchor first)."""
    reach = defect.spec.reach
    x, y = defect.x - shift[0], defect.y - shift[1]
    i, j, b, positions = crystal.sites_in_window(x - reach, y - reach, x + reach, y + reach, rotation)
    order = np.argsort(np.hypot(positions[:, 0] - x, positions[:, 1] - y), kind="stable")
    count = int(defect.size)
    return {(int(i[k]), int(j[k]), int(b[k])) for k in order[:count]}


def wrinkle_direction(defect: SiteDefect) -> np.ndarray:
    """Unit vector along a wrinkle, drawn from its seed."""
    angle = np.random.default_rng([defect.seed, 0x575249]).uniform(0.0, np.pi)
    return np.array([np.cos(angle), np.sin(angle)])


def wrinkle_lift(defect: SiteDefect, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (Å) a wrinkle adds at ``x``, ``y`` (Å): a Gaussian ridge across a segment of length
    ``defect.size`` centred on the anchor, with rounded ends."""
    along = wrinkle_direction(defect)
    dx, dy = np.asarray(x) - defect.x, np.asarray(y) - defect.y
    t = np.clip(dx * along[0] + dy * along[1], -defect.size / 2, defect.size / 2)
    distance2 = (dx - t * along[0]) ** 2 + (dy - t * along[1]) ** 2
    return defect.spec.height * np.exp(-distance2 / (2 * defect.spec.width**2))
