"""2-D crystals (graphene, hBN, MoS2, WS2, or slabs of any crystal read from a CIF) as a lattice plus
a basis.

Lattice vectors are ``a1 = a (1, 0)`` and ``a2 = b (cos gamma, sin gamma)`` (hexagonal: ``b = a``,
``gamma = 60°``), rotated by the layer's in-plane angle. A site is identified by integers ``(i, j, b)``:
its position is ``R(rotation) (i a1 + j a2 + basis[b])``. Lengths here are in ångström (ASE's unit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SQRT3 = np.sqrt(3.0)


@dataclass(frozen=True)
class BasisAtom:
    """One atom of the unit cell: element, fractional (u, v) along a1, a2 and height z (Å)."""

    symbol: str
    u: float
    v: float
    z: float


@dataclass(frozen=True)
class Crystal2D:
    """A 2-D crystal: a lattice (``a``, ``b`` in Å, angle ``gamma`` in degrees) and its basis."""

    name: str
    a: float  # lattice constant (Å)
    basis: tuple[BasisAtom, ...]
    b: float | None = None  # second lattice constant (Å); None: equal to a
    gamma: float = 60.0  # angle between a1 and a2 (degrees)

    @property
    def cell(self) -> np.ndarray:
        """Unrotated lattice vectors as rows, shape (2, 2), Å."""
        b, gamma = self.a if self.b is None else self.b, np.radians(self.gamma)
        return np.array([[self.a, 0.0], [b * np.cos(gamma), b * np.sin(gamma)]])

    @property
    def area_per_cell(self) -> float:
        """Unit-cell area (Å²)."""
        return float(abs(np.linalg.det(self.cell)))

    @property
    def first_order_spacing(self) -> float:
        """Spacing (Å) of the lattice's first-order planes, the coarsest fringes it images as."""
        b1, b2 = np.linalg.inv(self.cell).T  # reciprocal vectors (1/Å, without 2 pi)
        return float(1.0 / min(np.linalg.norm(g) for g in (b1, b2, b1 + b2, b1 - b2)))

    @property
    def species(self) -> list[str]:
        return sorted({atom.symbol for atom in self.basis})

    def site_positions(
        self, i: np.ndarray, j: np.ndarray, b: np.ndarray, rotation: float
    ) -> np.ndarray:
        """Positions (N, 3) in Å of the sites ``(i, j, b)``; z is the basis height."""
        uv = np.array([[atom.u, atom.v] for atom in self.basis])
        frac = np.stack([i + uv[b, 0], j + uv[b, 1]], axis=-1)
        xy = frac @ self.cell @ _rotation(rotation).T
        z = np.array([atom.z for atom in self.basis])[b]
        return np.column_stack([xy, z])

    def nearest_site(self, x: np.ndarray, y: np.ndarray, b: np.ndarray, rotation: float):
        """Lattice indices ``(i, j)`` of the site of sublattice ``b`` nearest to each (x, y) in Å.

        Rounding fractional coordinates is exact for the nearest site up to the odd tie on a
        hexagonal lattice, which is irrelevant for choosing random defect sites.
        """
        uv = np.array([[atom.u, atom.v] for atom in self.basis])
        unrotated = np.column_stack([x, y]) @ _rotation(rotation)
        frac = unrotated @ np.linalg.inv(self.cell)
        i = np.rint(frac[:, 0] - uv[b, 0]).astype(np.int64)
        j = np.rint(frac[:, 1] - uv[b, 1]).astype(np.int64)
        return i, j

    def sites_in_window(
        self, x0: float, y0: float, x1: float, y1: float, rotation: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All sites whose position lies in ``[x0, x1) × [y0, y1)`` (Å).

        Returns ``(i, j, b, positions)`` with positions of shape (N, 3).
        """
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ _rotation(rotation)
        frac = corners @ np.linalg.inv(self.cell)
        lo = np.floor(frac.min(axis=0)).astype(np.int64) - 1
        hi = np.ceil(frac.max(axis=0)).astype(np.int64) + 1
        ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
        n_basis = len(self.basis)
        i = np.repeat(ii.ravel(), n_basis)
        j = np.repeat(jj.ravel(), n_basis)
        b = np.tile(np.arange(n_basis), ii.size)
        positions = self.site_positions(i, j, b, rotation)
        inside = (
            (positions[:, 0] >= x0) & (positions[:, 0] < x1)
            & (positions[:, 1] >= y0) & (positions[:, 1] < y1)
        )
        return i[inside], j[inside], b[inside], positions[inside]


def reciprocal_vectors(crystal: Crystal2D, rotation: float) -> np.ndarray:
    """Reciprocal vectors (rows, 1/Å without 2 pi) ``b1``, ``b2`` and ``b1 ± b2`` (the shorter for a
    hexagonal cell: ``+`` for gamma = 60°) of the crystal turned by ``rotation``; ``g . r`` is a
    lattice point's fractional coordinate along each."""
    b1, b2 = (_rotation(rotation) @ np.linalg.inv(crystal.cell)).T
    return np.array([b1, b2, b1 + b2 if crystal.gamma < 90.0 else b1 - b2])


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def graphene() -> Crystal2D:
    """Graphene, a = 2.46 Å (C–C 1.42 Å), zig-zag along a1."""
    return Crystal2D("graphene", 2.46, (BasisAtom("C", 0.0, 0.0, 0.0), BasisAtom("C", 1 / 3, 1 / 3, 0.0)))


def hexagonal_boron_nitride() -> Crystal2D:
    """hBN monolayer, a = 2.504 Å."""
    return Crystal2D(
        "hBN", 2.504, (BasisAtom("B", 0.0, 0.0, 0.0), BasisAtom("N", 1 / 3, 1 / 3, 0.0))
    )


def transition_metal_dichalcogenide(metal: str, chalcogen: str, a: float, half_thickness: float):
    """2H-phase MX2 monolayer: metal at z = 0, chalcogens at ±half_thickness (Å)."""
    return Crystal2D(
        f"{metal}{chalcogen}2",
        a,
        (
            BasisAtom(metal, 0.0, 0.0, 0.0),
            BasisAtom(chalcogen, 1 / 3, 1 / 3, half_thickness),
            BasisAtom(chalcogen, 1 / 3, 1 / 3, -half_thickness),
        ),
    )


def molybdenum_disulfide() -> Crystal2D:
    """MoS2 monolayer, a = 3.16 Å, S–S height 3.17 Å."""
    return transition_metal_dichalcogenide("Mo", "S", 3.16, 1.585)


def tungsten_disulfide() -> Crystal2D:
    """WS2 monolayer, a = 3.155 Å, S–S height 3.14 Å."""
    return transition_metal_dichalcogenide("W", "S", 3.155, 1.57)


MATERIALS = {"graphene": graphene, "hBN": hexagonal_boron_nitride, "MoS2": molybdenum_disulfide,
             "WS2": tungsten_disulfide}


def from_cif(path: str, cells: int = 1) -> Crystal2D:
    """A slab of the crystal in the CIF file at ``path``: its a-b plane as the 2-D lattice, ``cells``
    unit cells thick along c, centred on z = 0 (ASE reads the file)."""
    from ase.io import read

    crystal = read(path)
    a_len, b_len, _, _, _, gamma = crystal.cell.cellpar()
    crystal.set_cell(crystal.cell.cellpar(), scale_atoms=True)  # standard orientation: a along x, b in xy
    slab = crystal.repeat((1, 1, cells))
    plane = np.asarray(crystal.cell)[:2, :2]  # a1, a2 in the xy plane
    uv = np.mod(slab.positions[:, :2] @ np.linalg.inv(plane), 1.0)  # c may lean: use the real x, y
    z = slab.positions[:, 2] - (slab.positions[:, 2].max() + slab.positions[:, 2].min()) / 2
    basis = tuple(BasisAtom(symbol, float(u), float(v), float(h))
                  for symbol, (u, v), h in zip(slab.get_chemical_symbols(), uv, z, strict=True))
    name = crystal.get_chemical_formula(mode="reduce")
    return Crystal2D(name, float(a_len), basis, float(b_len), float(gamma))


def strained(crystal: Crystal2D, rotation: float, strain: tuple[float, float, float]
             ) -> tuple[Crystal2D, float]:
    """The crystal turned by ``rotation`` (rad) under a uniform strain ``(exx, eyy, exy)`` of the sample
    frame, as a crystal with new lattice constants and the rotation that puts its a1 in place (a
    uniformly strained lattice is still a lattice: no window needs more atoms)."""
    exx, eyy, exy = strain
    if strain == (0.0, 0.0, 0.0):
        return crystal, rotation
    deformation = np.array([[1 + exx, exy], [exy, 1 + eyy]])
    c, s = np.cos(rotation), np.sin(rotation)
    a1, a2 = (deformation @ np.array([[c, -s], [s, c]]) @ v for v in crystal.cell)
    turned = float(np.arctan2(a1[1], a1[0]))
    gamma = float(np.degrees(np.arctan2(a1[0] * a2[1] - a1[1] * a2[0], a1 @ a2)))
    return Crystal2D(crystal.name, float(np.hypot(*a1)), crystal.basis, float(np.hypot(*a2)), gamma), turned
