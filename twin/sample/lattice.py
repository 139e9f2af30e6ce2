"""Hexagonal 2-D crystals (graphene, hBN, MoS2, WS2) as a lattice plus a basis.

Lattice vectors are ``a1 = a (1, 0)`` and ``a2 = a (1/2, sqrt(3)/2)``, rotated by the flake's
in-plane angle. A site is identified by integers ``(i, j, b)``: its position is
``R(rotation) (i a1 + j a2 + basis[b])``. Lengths here are in ångström (ASE's unit).
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
    """A hexagonal monolayer crystal."""

    name: str
    a: float  # lattice constant (Å)
    basis: tuple[BasisAtom, ...]

    @property
    def cell(self) -> np.ndarray:
        """Unrotated lattice vectors as rows, shape (2, 2), Å."""
        return self.a * np.array([[1.0, 0.0], [0.5, SQRT3 / 2.0]])

    @property
    def area_per_cell(self) -> float:
        """Unit-cell area (Å²)."""
        return float(abs(np.linalg.det(self.cell)))

    @property
    def first_order_spacing(self) -> float:
        """Spacing (Å) of the lattice's first-order planes, the coarsest fringes it images as."""
        return self.a * SQRT3 / 2.0

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

