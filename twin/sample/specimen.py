"""The shared virtual specimen: a procedural 2-D crystal with defects and ripples.

Public coordinates are metres in the *sample frame* (x, y in the plane, z up, the crystal's mean
plane at z = 0). Atoms are handed out as ``ase.Atoms`` in ångström, relative to the window corner.
Nothing is stored per area: the atoms of any window are rebuilt from the seed on demand.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.data.vdw_alvarez import vdw_radii

from twin.sample.defects import DefectField, DefectSpec, defect_label
from twin.sample.history import KnockOuts
from twin.sample.lattice import Crystal2D
from twin.sample.ripples import RippleField

ANGSTROM = 1e-10


@dataclass(frozen=True)
class Window:
    """Axis-aligned rectangle ``[x_min, x_max) × [y_min, y_max)`` in metres (sample frame)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @classmethod
    def around(cls, x: float, y: float, width: float, height: float) -> Window:
        """The window of the given size centred on ``(x, y)``."""
        return cls(x - width / 2, y - height / 2, x + width / 2, y + height / 2)

    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min

    def grown(self, margin: float) -> Window:
        """This window enlarged by ``margin`` (m) on every side."""
        return Window(self.x_min - margin, self.y_min - margin, self.x_max + margin, self.y_max + margin)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Defect:
    """Ground truth for one point defect: what it is and where (m, sample frame)."""

    kind: str  # "vacancy" or "substitution"
    species: str | None  # the substituting element; None for a vacancy
    host: str  # the element that belongs on this site
    x: float
    y: float
    z: float
    origin: str = "as grown"  # or "beam damage"

    @property
    def label(self) -> str:
        return defect_label(self.kind, self.species)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "label": self.label}


class Sample:
    """One seeded specimen shared by every instrument of a twin.

    ``version`` increases whenever the specimen changes (e.g. beam damage), so caches of
    anything computed from its atoms can tell whether they are still valid.
    """

    def __init__(
        self,
        name: str,
        crystal: Crystal2D,
        defect_specs: tuple[DefectSpec, ...],
        ripples: RippleField,
        seed: int,
        rotation: float = 0.0,
        support_height: float = -3.35e-10,
        description: str = "",
    ) -> None:
        self.name = name
        self.description = description
        self.crystal = crystal
        self.seed = seed
        self.rotation = rotation
        self.ripples = ripples
        self.support_height = support_height
        self.defects = DefectField(crystal, defect_specs, seed, rotation)
        self.knocked_out = KnockOuts()
        self.version = 0
        self._version_lock = threading.Lock()

    def atoms_in_window(self, window: Window) -> Atoms:
        """The atoms inside ``window``: positions in Å relative to its lower-left corner.

        ``z`` is the height in the sample frame (Å). ``atoms.info["window"]`` holds the window (m)
        and ``atoms.arrays["site"]`` each atom's lattice site ``(i, j, b)``.
        """
        x0, y0, x1, y1 = (v / ANGSTROM for v in (window.x_min, window.y_min, window.x_max, window.y_max))
        i, j, b, positions = self.crystal.sites_in_window(x0, y0, x1, y1, self.rotation)
        numbers = np.array([atomic_numbers[a.symbol] for a in self.crystal.basis])[b]
        positions = positions.copy()
        keep = np.ones(len(b), dtype=bool)
        if len(b):
            n_basis = len(self.crystal.basis)
            i0, j0, nj = i.min(), j.min(), j.max() - j.min() + 1
            keys = ((i - i0) * nj + (j - j0)) * n_basis + b  # sorted: sites come in (i, j, b) order
            for defect in self.defects.in_window(x0, y0, x1, y1):
                key = ((defect.i - i0) * nj + (defect.j - j0)) * n_basis + defect.b
                index = np.searchsorted(keys, key)
                if index == len(keys) or keys[index] != key:
                    continue
                if defect.spec.kind == "vacancy":
                    keep[index] = False
                else:
                    numbers[index] = atomic_numbers[defect.spec.species]
                    positions[index, 2] += defect.spec.z_offset
            for (si, sj, sb), *_ in self.knocked_out.in_window(x0, y0, x1, y1):
                key = ((si - i0) * nj + (sj - j0)) * n_basis + sb
                index = np.searchsorted(keys, key)
                if index < len(keys) and keys[index] == key:
                    keep[index] = False
        positions[:, 2] += self.ripples.height(positions[:, 0], positions[:, 1])
        positions[:, 0] -= x0
        positions[:, 1] -= y0
        atoms = Atoms(numbers=numbers[keep], positions=positions[keep], cell=[x1 - x0, y1 - y0, 0.0])
        atoms.arrays["site"] = np.column_stack([i, j, b])[keep]
        atoms.info["window"] = window.as_dict()
        atoms.info["sample"] = self.name
        return atoms

    def defects_in_window(self, window: Window) -> list[Defect]:
        """Ground truth: every point defect whose site lies in ``window``, grown or made by the beam."""
        x0, y0, x1, y1 = (v / ANGSTROM for v in (window.x_min, window.y_min, window.x_max, window.y_max))
        emptied = {site: (x, y, symbol) for site, x, y, symbol in self.knocked_out.in_window(x0, y0, x1, y1)}
        found = []
        for d in self.defects.in_window(x0, y0, x1, y1):
            if (d.i, d.j, d.b) in emptied:  # a dopant the beam removed: now a vacancy, listed below
                continue
            found.append(self._defect(d.spec.kind, d.spec.species, d.b, d.x, d.y, d.spec.z_offset))
        for (_, _, b), (x, y, symbol) in emptied.items():
            found.append(self._defect("vacancy", None, b, x, y, 0.0, host=symbol, origin="beam damage"))
        return found

    def _defect(self, kind: str, species: str | None, b: int, x: float, y: float, z_offset: float,
                host: str | None = None, origin: str = "as grown") -> Defect:
        z = self.crystal.basis[b].z + z_offset + float(self.ripples.height(x, y))
        return Defect(kind=kind, species=species, host=host or self.crystal.basis[b].symbol,
                      x=x * ANGSTROM, y=y * ANGSTROM, z=z * ANGSTROM, origin=origin)

    def remove_atoms(self, atoms: Atoms) -> int:
        """Empty the sites of ``atoms`` (as returned by :meth:`atoms_in_window`); returns how many were
        removed. The sample's version increases, so everything computed from its atoms is redone."""
        if len(atoms) == 0:
            return 0
        window = atoms.info["window"]
        xy = atoms.positions[:, :2] + np.array([window["x_min"], window["y_min"]]) / ANGSTROM
        removed = self.knocked_out.add(atoms.arrays["site"], xy, atoms.get_chemical_symbols())
        if removed:
            with self._version_lock:
                self.version += 1
        return removed

    def surface_height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Continuum top surface (m) at ``x``, ``y`` (m): ripples plus the top atoms' vdW radius.

        Used where pixels are far coarser than the lattice and single atoms are irrelevant.
        """
        top = max(atom.z + vdw_radii[atomic_numbers[atom.symbol]] for atom in self.crystal.basis)
        return (self.ripples.height(np.asarray(x) / ANGSTROM, np.asarray(y) / ANGSTROM) + top) * ANGSTROM

    @property
    def species(self) -> list[str]:
        """Every element the sample can hold: the crystal's and its dopants'."""
        dopants = {spec.species for spec in self.defects.specs if spec.species}
        return sorted({atom.symbol for atom in self.crystal.basis} | dopants)

    @property
    def lattice_spacing(self) -> float:
        """First-order lattice spacing (m): a camera pixel must be under half of it to see fringes."""
        return self.crystal.first_order_spacing * ANGSTROM

    def atom_density(self) -> float:
        """Atoms per m² of the pristine crystal."""
        return len(self.crystal.basis) / (self.crystal.area_per_cell * ANGSTROM**2)

    def describe(self) -> dict[str, object]:
        """A summary for clients and metadata."""
        return {
            "name": self.name,
            "description": self.description,
            "material": self.crystal.name,
            "lattice_constant": self.crystal.a * ANGSTROM,
            "rotation": self.rotation,
            "seed": self.seed,
            "version": self.version,
            "ripple_rms": self.ripples.rms * ANGSTROM,
            "support_height": self.support_height,
            "defects": [
                {"label": s.label, "density_per_m2": s.density * 1e18, "z_offset": s.z_offset * ANGSTROM}
                for s in self.defects.specs
            ],
        }
