"""How a layer relaxes on the layer beneath: a twisted or slightly mismatched pair of hexagonal lattices
forms a moiré, and where their atoms sit on top of each other (AA stacking) the layers are pushed
apart, where they are staggered (AB, Bernal) they sit at the equilibrium distance.

The local registry of two lattices is read from their first-order Fourier components: with ``g_j`` the
three shortest reciprocal vectors (1/Å, without 2 pi) of each layer and ``s`` their lattice origins,
``S(r) = sum_j cos 2 pi (g_j^lower . (r - s_lower) - g_j^upper . (r - s_upper))`` is 3 where lattice
points coincide (AA) and -3/2 where they are staggered by a third of a cell (AB). The upper layer is
lifted by ``AA_EXCESS (S + 3/2) / 4.5``: nothing at AB, ``AA_EXCESS`` at AA, a smooth corrugation with
the moiré's period in between. Lengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.sample.lattice import Crystal2D, reciprocal_vectors

# Å: interlayer distance at AA minus that at AB in relaxed twisted bilayer graphene (3.60 vs 3.35 Å,
# Uchida et al., Phys. Rev. B 90, 155451 (2014)); AFM and STM see the AA sites tens of pm higher.
AA_EXCESS = 0.25
SHORTEST_MOIRE = 10.0  # Å: shorter moiré periods (large twists) leave the layers flat
_LIKE = 0.05  # relative difference of lattice constants (and of gamma / 60°) within which lattices match


@dataclass(frozen=True)
class Registry:
    """The registry of an upper layer on a lower one (reciprocal vectors as rows, origins in Å)."""

    lower: np.ndarray  # (3, 2)
    upper: np.ndarray  # (3, 2)
    lower_origin: tuple[float, float]
    upper_origin: tuple[float, float]

    @property
    def moire_period(self) -> float:
        """Lattice constant (Å) of the moiré, infinite for aligned lattices."""
        beat = float(np.linalg.norm(self.lower - self.upper, axis=1).max())
        return np.inf if beat == 0 else 2 / (np.sqrt(3) * beat)

    def order(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``S(r)``: 3 at AA, -3/2 at AB."""
        xy = np.stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)], axis=-1)
        phase = (xy - self.lower_origin) @ self.lower.T - (xy - self.upper_origin) @ self.upper.T
        return np.cos(2 * np.pi * phase).sum(axis=-1)

    def lift(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """How far (Å) the upper layer stands above its AB height at ``x``, ``y`` (Å)."""
        return AA_EXCESS * (self.order(x, y) + 1.5) / 4.5


def registry(lower: Crystal2D, lower_rotation: float, lower_shift: tuple[float, float],
             upper: Crystal2D, upper_rotation: float, upper_shift: tuple[float, float]) -> Registry | None:
    """The registry of two hexagonal lattices of nearly equal constants (graphene on graphene or hBN,
    MoS2 on WS2), or ``None`` when they are not alike or their moiré is shorter than ``SHORTEST_MOIRE``."""
    if not (_hexagonal(lower) and _hexagonal(upper)) or abs(upper.a / lower.a - 1) > _LIKE:
        return None
    found = Registry(reciprocal_vectors(lower, lower_rotation), reciprocal_vectors(upper, upper_rotation),
                     lower_shift, upper_shift)
    return found if found.moire_period >= SHORTEST_MOIRE else None


def _hexagonal(crystal: Crystal2D) -> bool:
    b = crystal.a if crystal.b is None else crystal.b
    return abs(b / crystal.a - 1) <= _LIKE and min(abs(crystal.gamma / g - 1) for g in (60.0, 120.0)) <= _LIKE
